"""Saving, resetting and previewing an account's own wording of an email, each change in one
transaction with its audit event."""

from django.conf import settings
from django.db import IntegrityError, transaction

from accounts import audit
from mail import custom_emails, emails
from mail.models import CustomEmail

SAMPLE_NAME = "Ada Larsen"
SAMPLE_CODE = "482913"


def save(account, kind, subject, body, *, by, ip=None):
    try:
        with transaction.atomic():
            before = CustomEmail.objects.select_for_update().filter(
                portal_account=account, kind=kind
            )
            before = before.values("subject", "body").first()
            CustomEmail.objects.update_or_create(
                portal_account=account, kind=kind, defaults={"subject": subject, "body": body}
            )
            _audit("change_email_wording", account, kind, before, subject, body, by, ip)
    except IntegrityError:
        # Another admin created it at the same moment: theirs is there now; this one updates it.
        save(account, kind, subject, body, by=by, ip=ip)


def reset(account, kind, *, by, ip=None):
    """Back to the default wording; False when it already was."""
    with transaction.atomic():
        custom = account.custom_emails.select_for_update().filter(kind=kind).first()
        if custom is None:
            return False
        before = {"subject": custom.subject, "body": custom.body}
        custom.delete()
        _audit("reset_email_wording", account, kind, before, None, None, by, ip)
    return True


def _audit(action, account, kind, before, subject, body, by, ip):
    after = {"subject": subject, "body": body} if subject is not None else None
    audit.record(
        action,
        by=by,
        portal_account=account,
        before=before,
        after=after,
        ip=ip,
        detail=kind.label,
    )


def sample_values(account, kind):
    """The placeholders' values for a sample user: a made-up link or code that opens nothing."""
    carries = custom_emails.EDITABLE[kind][0]
    purpose = emails.LINKS[kind][0]
    return {
        "name": SAMPLE_NAME,
        "portal": account.name,
        "link": f"{settings.PORTAL_BASE_URL}{account.portal_path()}example-link"
        if carries == "link"
        else "",
        "code": SAMPLE_CODE if carries == "code" else "",
        "expires": emails.expires_in(account, purpose),
    }


def preview(account, kind, subject, body):
    """(subject, text) as a sample user would get them."""
    values = sample_values(account, kind)
    subject, text, _paragraphs = custom_emails.render(subject, body, values)
    return {"subject": subject, "text": text}
