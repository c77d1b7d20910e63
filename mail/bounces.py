"""A permanent refusal of a recipient (a 5xx to RCPT: no such mailbox, address rejected) is a
bounce: the email is not tried again, and the user's address is marked undeliverable so that
the console shows it on their row and page until their email changes (User.email_undeliverable).
A 4xx (mailbox full, greylisting) or a refused message (DATA: content, size) is not a bounce:
those retry as before."""

import smtplib

from django.utils import timezone

from accounts import audit
from accounts.models import User


def permanent_refusal(error):
    """The mail server's reply when `error` refused the recipient for good, else ""."""
    if not isinstance(error, smtplib.SMTPRecipientsRefused):
        return ""
    replies = list(error.recipients.values())
    if not replies or not all(500 <= code < 600 for code, _text in replies):
        return ""
    code, text = replies[0]
    text = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(text.split())}"[:300]


def record_bounce(row, reply):
    """In the failing row's transaction: the user whose address it still is gets it marked,
    with an audit event (no actor: the mail server said so)."""
    user = User.objects.filter(pk=row.user_id, email__iexact=row.to_email).first()
    if user is None:  # their email changed since: nothing to mark
        return
    user.undeliverable_email = row.to_email
    user.undeliverable_reason = reply
    user.undeliverable_at = timezone.now()
    user.save(update_fields=["undeliverable_email", "undeliverable_reason", "undeliverable_at"])
    audit.record(
        "email_bounced",
        by=None,
        subject=user,
        after={"email": row.to_email, "reply": reply},
        detail=f"{row.get_kind_display()} to {row.to_email}: {reply}",
    )
