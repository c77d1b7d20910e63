"""Expiry: a user with an access end date (User.access_ends_on) is disabled at the start of that
day (UTC) by beat, through lifecycle.disable, with the policy as the audit event's actor. The
date is cleared in the same transaction, so an admin who enables the user again gives them
access like any other user's, until a new date is set.

Cheap: each run reads the user_access_ends index up to today; a user leaves it when disabled.
Idempotent: each user is checked again under their row lock, so a second run (or an overlapping
one) finds nothing to do."""

from django.db import transaction
from django.utils import timezone

from accounts import audit, lifecycle
from accounts.errors import LifecycleError
from accounts.models import User, UserKind, UserState
from helpers.bulk_sql import any_of
from helpers.keyset import batches

ACTOR = "Access end date policy"
BATCH_SIZE = 500


def due(today):
    """Every account's users whose access has ended by `today` and who still hold a seat."""
    return User.objects.filter(
        kind=UserKind.PORTAL,
        access_ends_on__isnull=False,
        access_ends_on__lte=today,
        state__in=[UserState.UNCONFIRMED, UserState.ENABLED],
    )


def run(now=None):
    """Disable every user whose access has ended; returns how many."""
    today = (now or timezone.now()).date()
    disabled = 0
    with audit.acting_as(ACTOR):
        for batch in batches(due(today), ("access_ends_on", "id"), BATCH_SIZE):
            for _ends_on, user_id in batch:
                disabled += _end_access(user_id, today)
    return disabled


def _end_access(user_id, today):
    """One user, one transaction: the disable with its audit event, the date cleared."""
    try:
        with transaction.atomic():
            user = (
                User.objects.select_for_update(no_key=True)
                .filter(pk=user_id, access_ends_on__lte=today)
                .first()
            )
            if user is None or user.state == UserState.DISABLED:
                return False  # a new date was set, or someone disabled them, meanwhile
            ended = user.access_ends_on
            lifecycle.disable(user, by=None, detail=f"Access end date {ended.isoformat()} reached")
            User.objects.filter(pk=user_id).update(access_ends_on=None)
    except LifecycleError:  # deleted meanwhile
        return False
    return True


def set_many(account, ends, *, by):
    """Access end dates for users just created in bulk (the CSV import, in its batch's
    transaction): {user id: date}, already checked (lifecycle.set_access_end's rules). An
    update per date and one insert of their audit events."""
    if not ends:
        return
    by_date = {}
    for user_id, ends_on in ends.items():
        by_date.setdefault(ends_on, []).append(user_id)
    for ends_on, user_ids in by_date.items():
        User.objects.filter(portal_account=account, pk__in=any_of(user_ids)).update(
            access_ends_on=ends_on
        )
    labels = {
        pk: f"{name} <{email}>" if email else name
        for pk, name, email in User.objects.filter(pk__in=any_of(ends)).values_list(
            "pk", "name", "email"
        )
    }
    before = {"access_ends_on": None}
    audit.record_many(
        [
            (
                "change_access_end",
                user_id,
                labels.get(user_id, ""),
                before,
                {"access_ends_on": ends_on.isoformat()},
                "",
            )
            for user_id, ends_on in ends.items()
        ],
        by=by,
        portal_account=account,
    )
