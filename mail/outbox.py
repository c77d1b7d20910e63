"""The outbox: every email is a row written with the change that caused it, and handed to
Celery only once that change has committed (mail/tasks.py); mail/delivery.py sends it."""

from datetime import timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.dispatch import Signal
from django.utils import timezone

from accounts.models import AuditEvent, EmailKind, OutboxEmail, User
from mail import tasks

# Sent when rows written in bulk have committed, with their `row_ids` and `kinds` (kind -> rows;
# no post_save is sent for them): operations.metric_hooks counts them as queued.
queued_in_bulk = Signal()

# A newer email of the same family makes a pending older one pointless (its link would be dead).
# An invitation, a reinvitation and a policy's reminder all carry the one live invitation link.
_INVITATIONS = [EmailKind.INVITATION, EmailKind.REINVITATION, EmailKind.INVITATION_REMINDER]
_FAMILIES = {
    EmailKind.INVITATION: _INVITATIONS,
    EmailKind.REINVITATION: _INVITATIONS,
    EmailKind.INVITATION_REMINDER: _INVITATIONS,
}


# The audit actions that send each kind of email: a lifecycle verb records its audit event (with
# who acted) and then queues the email in the same transaction.
_CAUSES = {
    EmailKind.INVITATION: ["invite", "enable"],
    EmailKind.REINVITATION: ["reinvite"],
    EmailKind.PASSWORD_RESET: ["reset_password"],
    EmailKind.ACCESS_RESTORED: ["enable"],
    EmailKind.LOGIN_LINK: ["send_login_email"],
    EmailKind.LOGIN_CODE: ["send_login_code"],
    EmailKind.ACCESS_BLOCKED: ["send_access_blocked"],
}
# An email queued with no audit event of its own (an invitation sent again because the address
# changed) must not inherit an old one: the cause is written moments before the email.
_CAUSE_WINDOW = timedelta(minutes=1)


def _queued_by(user, kind):
    """Who caused this email, as the audit log names them: the actor of the audit event the same
    change just wrote about this user, if it is the action that sends this kind. The lifecycle
    records `by` in the audit event but does not hand it to queue_email, and the worker that
    mints the email's token later has no one to credit without this."""
    causes = _CAUSES.get(kind)
    if not causes:
        return None
    cause = (
        AuditEvent.objects.filter(subject_user=user)
        .order_by("-pk")
        # An event keeps its actor's id after the actor is deleted (no key); queued_by has one.
        .annotate(actor_exists=Exists(User.objects.filter(pk=OuterRef("actor_id"))))
        .values("action", "actor_id", "actor_exists", "created_at")
        .first()
    )
    if (
        cause is None
        or cause["action"] not in causes
        or cause["created_at"] < timezone.now() - _CAUSE_WINDOW
        or not cause["actor_exists"]
    ):
        return None
    return cause["actor_id"]


def queue_email(user, kind, *, to=None, **context):
    """Write an outbox row for the user (to their address, or to `to`); Celery gets it when the
    surrounding transaction commits."""
    OutboxEmail.objects.filter(
        user=user, status=OutboxEmail.Status.PENDING, kind__in=_FAMILIES.get(kind, [kind])
    ).update(status=OutboxEmail.Status.CANCELLED, last_error="Replaced by a newer email.")
    now = timezone.now()
    row = OutboxEmail.objects.create(
        portal_account=user.portal_account,
        user=user,
        to_email=to or user.email,
        kind=kind,
        context=context,
        queued_by_id=_queued_by(user, kind),
        queued_at=now,
        next_attempt_at=now,
    )
    tasks.hand_over_on_commit(row.pk, kind)
    return row


def cancel_pending(user, *, reason):
    return OutboxEmail.objects.filter(user=user, status=OutboxEmail.Status.PENDING).update(
        status=OutboxEmail.Status.CANCELLED, last_error=reason
    )


def hand_over_on_commit(row_ids, kinds):
    """Rows written in bulk (a bulk invite, the CSV import) go to Celery in one message once the
    transaction that wrote them commits. `kinds` ({kind: rows}) is what the writer knows already:
    reading it back from the rows cost an import a query of its whole batch's ids, twice."""
    row_ids, kinds = list(row_ids), {str(kind): count for kind, count in kinds.items()}

    def hand_over():
        queued_in_bulk.send(sender=OutboxEmail, row_ids=row_ids, kinds=kinds)
        tasks.hand_many_to_celery(row_ids, kinds)

    transaction.on_commit(hand_over)
