"""The outbox: every email is a row written with the change that caused it, and handed to
Celery only once that change has committed (mail/tasks.py); mail/delivery.py sends it."""

from django.db import transaction
from django.utils import timezone

from accounts.models import EmailKind, OutboxEmail
from mail import tasks

# A newer email of the same family makes a pending older one pointless (its link would be dead).
_FAMILIES = {
    EmailKind.INVITATION: [EmailKind.INVITATION, EmailKind.REINVITATION],
    EmailKind.REINVITATION: [EmailKind.INVITATION, EmailKind.REINVITATION],
}


def queue_email(user, kind, *, to=None, **context):
    """Write an outbox row for the user (to their address, or to `to`); Celery gets it when the
    surrounding transaction commits."""
    OutboxEmail.objects.filter(
        user=user, status=OutboxEmail.Status.PENDING, kind__in=_FAMILIES.get(kind, [kind])
    ).update(status=OutboxEmail.Status.CANCELLED, last_error="Replaced by a newer email.")
    row = OutboxEmail.objects.create(
        portal_account=user.portal_account,
        user=user,
        to_email=to or user.email,
        kind=kind,
        context=context,
        queued_at=timezone.now(),
    )
    transaction.on_commit(lambda: tasks.hand_to_celery(row.pk))
    return row


def cancel_pending(user, *, reason):
    return OutboxEmail.objects.filter(user=user, status=OutboxEmail.Status.PENDING).update(
        status=OutboxEmail.Status.CANCELLED, last_error=reason
    )


def hand_over_on_commit(row_ids):
    """Rows written in bulk (a bulk invite, the CSV import) go to Celery in one message once the
    transaction that wrote them commits."""
    row_ids = list(row_ids)
    transaction.on_commit(lambda: tasks.hand_many_to_celery(row_ids))
