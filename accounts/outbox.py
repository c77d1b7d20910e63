"""The outbox: every email is a row written with the change that caused it, handed to Celery
only once that change has committed, and sent at most once."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.emails import build_message
from accounts.models import EmailKind, OutboxEmail

log = logging.getLogger(__name__)

# A newer email of the same family makes a pending older one pointless (its link would be dead).
_FAMILIES = {
    EmailKind.INVITATION: [EmailKind.INVITATION, EmailKind.REINVITATION],
    EmailKind.REINVITATION: [EmailKind.INVITATION, EmailKind.REINVITATION],
}


def queue_email(user, kind, **context):
    """Write an outbox row for the user; Celery gets it when the surrounding transaction commits."""
    OutboxEmail.objects.filter(
        user=user, status=OutboxEmail.Status.PENDING, kind__in=_FAMILIES.get(kind, [kind])
    ).update(status=OutboxEmail.Status.CANCELLED, last_error="Replaced by a newer email.")
    row = OutboxEmail.objects.create(
        portal_account=user.portal_account,
        user=user,
        to_email=user.email,
        kind=kind,
        context=context,
        queued_at=timezone.now(),
    )
    transaction.on_commit(lambda: _hand_to_celery(row.pk))
    return row


def cancel_pending(user, *, reason):
    return OutboxEmail.objects.filter(user=user, status=OutboxEmail.Status.PENDING).update(
        status=OutboxEmail.Status.CANCELLED, last_error=reason
    )


def _hand_to_celery(row_id):
    from accounts.tasks import send_outbox_email

    try:
        send_outbox_email.delay(row_id)
    except Exception:  # broker down: the row stays pending and the sweep re-queues it
        log.exception("Could not queue outbox email %s; the sweep will retry it", row_id)


class SendFailed(Exception):
    def __init__(self, row, error):
        super().__init__(str(error))
        self.row = row
        self.retry_in = retry_delay(row.attempts)
        self.final = row.status == OutboxEmail.Status.FAILED


def retry_delay(attempts):
    return settings.OUTBOX_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0)


def deliver(row_id):
    """Send one row. Returns True when this call sent it, False when there was nothing to do
    (already sent, cancelled, or being sent by another worker). Raises SendFailed."""
    try:
        with transaction.atomic():
            row = (
                OutboxEmail.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("user", "portal_account")
                .filter(pk=row_id, status=OutboxEmail.Status.PENDING)
                .first()
            )
            if row is None or row.user is None:
                return False
            message = build_message(row)
            message.send()
            row.status = OutboxEmail.Status.SENT
            row.sent_at = timezone.now()
            row.attempts += 1
            row.last_error = ""
            row.subject = message.subject
            row.save(update_fields=["status", "sent_at", "attempts", "last_error", "subject"])
            return True
    except Exception as error:
        row = _record_failure(row_id, error)
        raise SendFailed(row, error) from error


def _record_failure(row_id, error):
    with transaction.atomic():
        row = OutboxEmail.objects.select_for_update().get(pk=row_id)
        row.attempts += 1
        row.last_error = f"{type(error).__name__}: {error}"[:2000]
        row.next_attempt_at = timezone.now() + timedelta(seconds=retry_delay(row.attempts))
        if row.attempts >= settings.OUTBOX_MAX_ATTEMPTS:
            row.status = OutboxEmail.Status.FAILED
        row.save(update_fields=["attempts", "last_error", "next_attempt_at", "status"])
    log.warning("Outbox email %s failed (attempt %s): %s", row_id, row.attempts, row.last_error)
    return row


def requeue_unsent():
    """Hand Celery again every pending row that has waited too long (broker was down, a worker
    died mid-task) and whose retry time has come. Returns the ids."""
    now = timezone.now()
    stale = OutboxEmail.objects.filter(
        status=OutboxEmail.Status.PENDING, queued_at__lt=now - settings.OUTBOX_REQUEUE_AFTER
    ).exclude(next_attempt_at__gt=now)
    ids = list(stale.values_list("pk", flat=True)[:5000])
    OutboxEmail.objects.filter(pk__in=ids).update(queued_at=now)
    for row_id in ids:
        _hand_to_celery(row_id)
    return ids
