"""MSSP staff retry an email the outbox gave up on (System page): a fresh set of attempts, in one
transaction with its audit event; Celery gets the row once that commits, as for any new email."""

from django.db import transaction
from django.utils import timezone

from accounts import audit
from accounts.models import OutboxEmail, UserState
from mail import tasks

RETRIED = "email_retried"


class RetryRefused(Exception):
    """Why the email is not retried, in words fit to show."""


def retry_failed_email(row_id, *, by, ip=None):
    with transaction.atomic():
        row = (
            OutboxEmail.objects.select_for_update(of=("self",))
            .select_related("user", "portal_account")
            .filter(pk=row_id)
            .first()
        )
        _check(row)
        before = {"status": row.status, "attempts": row.attempts, "last_error": row.last_error}
        row.status = OutboxEmail.Status.PENDING
        row.attempts = 0
        # Due at once (a row without a due time would wait for the sweep).
        row.queued_at = row.next_attempt_at = timezone.now()
        row.save(update_fields=["status", "attempts", "next_attempt_at", "queued_at"])
        audit.record(
            RETRIED,
            by=by,
            subject=row.user,
            portal_account=row.portal_account,
            before={**before, "last_error": before["last_error"][:300]},
            after={"status": row.status, "attempts": 0},
            ip=ip,
            detail=f"{row.get_kind_display()} email to {row.to_email}",
        )
        transaction.on_commit(lambda: tasks.hand_to_celery(row.pk))
    return row


def _check(row):
    if row is None:
        raise RetryRefused("This email no longer exists.")
    if row.status != OutboxEmail.Status.FAILED:
        raise RetryRefused(
            f"This email is {row.get_status_display().lower()} now, not failed: "
            "somebody retried it already."
        )
    if row.user is None:
        raise RetryRefused("Its user was deleted: there is nobody to send it to.")
    if row.user.state == UserState.DISABLED:
        raise RetryRefused(f"{row.user.name} is disabled: enable them first.")
    newer = OutboxEmail.objects.filter(
        user=row.user, kind=row.kind, created_at__gt=row.created_at
    ).exclude(status=OutboxEmail.Status.CANCELLED)
    if newer.exists():
        # Its link would kill the newer email's.
        raise RetryRefused(
            f"A newer {row.get_kind_display().lower()} email went to {row.to_email} since."
        )
