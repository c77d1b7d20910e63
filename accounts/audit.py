"""Audit events: written inside the transaction of the change they describe."""

from collections import namedtuple
from contextlib import contextmanager
from contextvars import ContextVar

from django.dispatch import Signal

from accounts.models import AuditEvent
from helpers.bulk_sql import insert

# Sent inside the transaction that writes audit events, with `events`: a list of Recorded. An
# app that must act on changes in the same transaction (webhooks writes its deliveries) listens
# here, so that the domain never imports it and no change can skip it: every state change
# already records its audit event through this module or sign_in_audit.
recorded = Signal()
Recorded = namedtuple("Recorded", "action portal_account_id user_id before after")

# Who acts when no console person does (an API token, say): lifecycle functions take `by` as a
# User, so the API names itself here instead of threading a label through every function.
_acting_as = ContextVar("acting_as", default="system")


@contextmanager
def acting_as(label):
    """Audit events recorded inside, with no `by`, name `label` as the actor."""
    reset = _acting_as.set(label)
    try:
        yield
    finally:
        _acting_as.reset(reset)


def user_snapshot(user):
    """The values an audit row compares before and after a lifecycle change."""
    return {
        "state": user.state,
        "role": user.role.name if user.role_id else None,
        "is_account_admin": user.is_account_admin,
    }


def record(
    action,
    *,
    by,
    subject=None,
    portal_account=None,
    before=None,
    after=None,
    ip=None,
    outcome=AuditEvent.Outcome.SUCCESS,
    detail="",
):
    if portal_account is None and subject is not None:
        portal_account = subject.portal_account
    event = AuditEvent.objects.create(
        action=action,
        actor=by,
        actor_label=_actor_label(by),
        portal_account=portal_account,
        subject_user=subject,
        subject_label=str(subject) if subject else "",
        before=before or {},
        after=after or {},
        ip_address=ip,
        outcome=outcome,
        detail=detail,
    )
    if outcome == AuditEvent.Outcome.SUCCESS:
        announce([Recorded(action, event.portal_account_id, event.subject_user_id, before, after)])
    return event


def announce(events):
    """Tell the `recorded` listeners; a listener's failure fails the change (it is part of it)."""
    recorded.send(sender=AuditEvent, events=events)


def _actor_label(by):
    return str(by) if by else _acting_as.get()


BULK_FIELDS = (
    "action",
    "actor_id",
    "actor_label",
    "portal_account_id",
    "subject_user_id",
    "subject_label",
    "before",
    "after",
    "ip_address",
    "outcome",
    "detail",
)


def record_many(events, *, by, portal_account, ip=None):
    """`record` for thousands of events at once (the CSV import), in one bulk insert. `events`
    are (action, subject user id or None, subject label, before, after, detail)."""
    insert(AuditEvent, BULK_FIELDS, bulk_rows(events, by=by, portal_account=portal_account, ip=ip))
    announce_many(events, portal_account=portal_account)


def bulk_rows(events, *, by, portal_account, ip=None):
    """The rows of `BULK_FIELDS` that `record_many` inserts for `events`."""
    actor_id, actor_label = (by.pk if by else None), _actor_label(by)
    success = str(AuditEvent.Outcome.SUCCESS)
    return [
        (action, actor_id, actor_label, portal_account.pk, user_id, label, before, after)
        + (ip, success, detail)
        for action, user_id, label, before, after, detail in events
    ]


def announce_many(events, *, portal_account):
    """`announce` for the events of `record_many`, once they are written."""
    announce(
        [
            Recorded(action, portal_account.pk, user_id, before, after)
            for action, user_id, _label, before, after, _detail in events
        ]
    )
