"""Email addresses that are safe in a mail header. Django's validate_email accepts a quoted
local part holding control characters ('"a\\x1cb"@example.com'); the mail library turns some of
them into line breaks when it writes the To or Reply-To header, which breaks the header or has
the email refused for ever ("embedded header"). No real mailbox needs one."""

import re

from django.core.exceptions import ValidationError

_CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f]")


def header_safe(address):
    return _CONTROL_CHARACTER.search(address) is None


def validate_header_safe(address):
    """A form field's validator (with Django's own email check)."""
    if not header_safe(address):
        raise ValidationError("Enter a valid email address.", code="invalid")
