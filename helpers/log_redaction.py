"""Portal links carry their secret in the URL path. Django logs paths (a 400 for a dead link,
a 405, runserver's access lines), so the log handler blanks the secret out of every record:
a log file must never hold a usable sign-in link."""

import logging
import re

# /p/<slug>/activate|reset|link|magic|confirm-email/<secret>/ : the portal's token pages
# (portal.urls).
TOKEN_PATH = re.compile(r"(/p/[^/\s]+/(?:activate|reset|link|magic|confirm-email)/)[^/\s\"']+")


def redact(text):
    return TOKEN_PATH.sub(r"\1[secret]", text)


class RedactPortalSecrets(logging.Filter):
    def filter(self, record):
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True
