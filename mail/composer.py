"""A batch's emails, written from one rendering per portal account and kind.

Rendering the templates and building the MIME message with the email library cost the batch
sender (mail/batches.py) most of its time per message, and all but three values of a message
are the same for every row of an account and kind: the person's name, the link's secret (or
the code) and the row's own headers (To, Date, Message-ID, X-Outbox-Id). So the first two rows
of a group (same kind, account and row context) are rendered as one at a time would
(mail.emails.email_context and email_content: the same context, the same templates, the
account's own wording when it has one), the second time also with placeholders in place of
those values; when the placeholders, filled in with the first row's values, give exactly the
first row's email, the rest of the group is filled in, never rendered. Whatever else a template
might do with a value (a filter, a condition on it) shows up in that comparison, and the group
is then rendered row by row, as is a row whose name the wording's whitespace rules would change,
and a group whose context needs anything of the row but those three values (an AttributeError
on the stand-in row below).

For an SMTP session (Django's SMTP backend) the message is written as bytes here, as Django's
EmailMultiAlternatives would be (mail.emails.as_email): multipart/alternative, text then HTML,
UTF-8 in 7 or 8 bits, the subject and addresses encoded by Django's own functions. A part with a
line too long for SMTP (over 998 bytes) goes through Django's MIME instead, as quoted-printable.
Any other backend (locmem in tests, the demo's mail folder) gets the EmailMultiAlternatives."""

import json
import logging
import re
import secrets
from email.utils import formatdate
from types import SimpleNamespace

from django.conf import settings
from django.core.mail.message import forbid_multi_line_headers, sanitize_address
from django.utils.html import escape

from mail.custom_emails import custom_email
from mail.emails import LINKS, as_email, email_content, email_context, message_id
from mail.sender_identity import sender_of

log = logging.getLogger(__name__)

_TAG = secrets.token_hex(8)
# Stand-ins for a row's values. The name's has characters that HTML escaping changes, so that
# where a template escapes it (HTML) and where it does not (text) is seen, and each place gets
# the value escaped or not in the same way. The secret and the code are URL-safe, as theirs are.
_NAME = f"PaName{_TAG}<'&\">"
_NAME_ESCAPED = escape(_NAME)
_SECRET = f"PaSecret{_TAG}"
_CODE = f"PaCode{_TAG}"

_NEWLINES = re.compile(r"\r\n|\r|\n")
# An address that Django's sanitize_address would give back as it is.
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
)
MAX_LINE_BYTES = 998  # RFC 5322
_UNSET = object()


class Composer:
    """Writes the emails of one batch (its caches are the batch's: a sender, a wording or a
    lifetime changed meanwhile is read again by the next batch)."""

    def __init__(self):
        self.senders = {}  # account id -> mail.sender_identity.Sender
        self.customs = {}  # mail.custom_emails' cache
        self.templates = {}  # group -> _Template, or None: render each row
        self.firsts = {}  # group -> the first row, its value and its email, until the second
        self.headers = {}  # a header's value -> as written
        self.boundary = f"=============={secrets.token_hex(12)}=="

    def sender(self, row):
        if row.portal_account_id not in self.senders:
            self.senders[row.portal_account_id] = sender_of(row.portal_account)
        return self.senders[row.portal_account_id]

    def content(self, row, minted, crlf=False):
        """(subject, text, html) of the row's email, `minted` its secret or code; with `crlf`,
        the text and HTML with SMTP's line ends."""
        key = (row.kind, row.portal_account_id, json.dumps(row.context, sort_keys=True))
        template = self.templates.get(key, _UNSET)
        if template is not None and template is not _UNSET:
            filled = template.fill(row.user.name, minted, crlf)
            if filled is not None:
                return filled
        found = self._render(row, minted)
        if (
            template is _UNSET
            and (minted is not None or LINKS[row.kind][0] is None)
            and _plain(row.user.name)
        ):
            self._learn(key, row, minted, found)
        return _with_crlf(found) if crlf else found

    def email(self, row, minted):
        """The row's EmailMultiAlternatives (for any backend)."""
        return as_email(row, self.sender(row), *self.content(row, minted))

    def mime(self, row, minted):
        """(envelope sender, [recipient], the message as bytes, subject) for an SMTP session."""
        sender = self.sender(row)
        subject, text, html = self.content(row, minted, crlf=True)
        envelope_from = self._header(("envelope", sender.from_header))
        to = row.to_email
        if _PLAIN_ADDRESS.fullmatch(to):
            to_header = recipient = to
        else:
            # Django's own rules for anything else (and its errors: a line break, no @).
            recipient = sanitize_address(to, "utf-8")
            to_header = forbid_multi_line_headers("To", to, "utf-8")[1]
        text_bytes, html_bytes = text.encode(), html.encode()
        boundary = self.boundary.encode()
        if (
            max(map(len, text_bytes.split(b"\r\n"))) > MAX_LINE_BYTES
            or max(map(len, html_bytes.split(b"\r\n"))) > MAX_LINE_BYTES
            or boundary in text_bytes
            or boundary in html_bytes
        ):
            message = as_email(row, sender, *self.content(row, minted)).message()
            return envelope_from, [recipient], message.as_bytes(linesep="\r\n"), subject
        lines = [
            f'Content-Type: multipart/alternative;\r\n boundary="{self.boundary}"',
            "MIME-Version: 1.0",
            f"Subject: {self._header(('Subject', subject))}",
            f"From: {self._header(('From', sender.from_header))}",
            f"To: {to_header}",
        ]
        if sender.reply_to:
            lines.append(f"Reply-To: {self._header(('Reply-To', ', '.join(sender.reply_to)))}")
        lines += [
            f"Date: {formatdate(localtime=settings.EMAIL_USE_LOCALTIME)}",
            f"X-Outbox-Id: {row.pk}",
            f"Message-ID: {message_id(row)}",
            "",
            "",
        ]
        data = b"".join(
            (
                "\r\n".join(lines).encode(),
                b"--" + boundary + b"\r\n" + _part_headers("plain", text_bytes),
                text_bytes,
                b"\r\n--" + boundary + b"\r\n" + _part_headers("html", html_bytes),
                html_bytes,
                b"\r\n--" + boundary + b"--\r\n",
            )
        )
        return envelope_from, [recipient], data, subject

    def _render(self, row, minted):
        context = email_context(row, self.sender(row), minted)
        custom = custom_email(row.portal_account_id, row.kind, self.customs)
        return email_content(row, context, custom)

    def _learn(self, key, row, minted, found):
        """The first row of a group is kept; at the second, the group's template is made and
        checked against the first row's email."""
        first = self.firsts.pop(key, None)
        if first is None:
            self.firsts[key] = (row.user.name, minted, found)
            return
        name, first_minted, first_found = first
        template = None
        try:
            template = _Template(self._render(_stand_in(row), _stand_in_credential(row)))
        except AttributeError:
            # The context asked the row for more than the three values.
            log.warning("The %s email needs more of its row: rendered per row", row.kind)
        if template is not None and template.fill(name, first_minted) != first_found:
            log.warning("The %s email's template does not compose: rendered per row", row.kind)
            template = None
        self.templates[key] = template

    def _header(self, key):
        """A header's value as Django writes it, and the envelope sender (one of each a batch)."""
        if key not in self.headers:
            name, value = key
            if name == "envelope":
                written = sanitize_address(value, "utf-8")
            else:
                written = forbid_multi_line_headers(name, value, "utf-8")[1]
                written = written.replace("\r\n", "\n").replace("\n", "\r\n")
            self.headers[key] = written
        return self.headers[key]


def _plain(name):
    """Whether a name can stand where the placeholder stood: own wordings fold whitespace and
    split paragraphs at blank lines, and an empty name may leave two spaces to fold."""
    return bool(name) and name == " ".join(name.split())


def _with_crlf(content):
    subject, text, html = content
    return subject, _NEWLINES.sub("\r\n", text), _NEWLINES.sub("\r\n", html)


def _part_headers(subtype, payload):
    encoding = "7bit" if payload.isascii() else "8bit"
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\nMIME-Version: 1.0\r\n'
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n"
    ).encode()


def _stand_in(row):
    """The row as the group's template sees it: its kind, account and context, and a person
    whose name is a placeholder. Nothing else: a context that needs more fails (AttributeError)."""
    return SimpleNamespace(
        kind=row.kind,
        context=row.context,
        portal_account=row.portal_account,
        portal_account_id=row.portal_account_id,
        user=SimpleNamespace(name=_NAME),
    )


def _stand_in_credential(row):
    purpose, url_name = LINKS[row.kind]
    if purpose is None:
        return None
    return _SECRET if url_name is not None else _CODE


class _Template:
    def __init__(self, content):
        self.parts = content
        # Filled in, nothing adds a line end (the name has none): converted once.
        self.parts_crlf = _with_crlf(content)

    def fill(self, name, minted, crlf=False):
        """The email with the row's values; None for a name that the placeholder cannot stand
        for (an own wording folds whitespace and splits paragraphs at blank lines)."""
        if not _plain(name):
            return None
        values = ((_NAME_ESCAPED, escape(name)), (_NAME, name))
        if minted is not None:
            values += ((_SECRET, minted), (_CODE, minted))
        filled = []
        for part in self.parts_crlf if crlf else self.parts:
            for placeholder, value in values:
                part = part.replace(placeholder, value)
            filled.append(part)
        return tuple(filled)
