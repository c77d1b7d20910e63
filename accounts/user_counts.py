"""Reading the per-account user counters (accounts.models.UserCount, RoleCount) and checking them.

Everything that needs how many users an account has (tab counts, seat use, license checks)
reads them here: a few rows per account, whatever the account's size. The database keeps them
(see the model); `recount` is the audit that they are right."""

from collections import Counter

from django.db import transaction
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce

from accounts.models import PortalAccount, RoleCount, User, UserCount, UserKind
from accounts.models.user import SEAT_STATES
from helpers import counter_drift


def counts_of(account_rows):
    """{(user_type, state): users} of one account, from its UserCount rows (as scoped by
    accounts.scoping.user_counts)."""
    counts = Counter()
    for user_type, state, users in account_rows.values_list("user_type", "state", "users"):
        counts[user_type, state] += users
    return counts


def by_account(accounts):
    """{account pk: {(user_type, state): users}} for a list of accounts, in one query."""
    counts = {account.pk: Counter() for account in accounts}
    rows = UserCount.objects.filter(portal_account__in=list(counts)).values_list(
        "portal_account", "user_type", "state", "users"
    )
    for account_id, user_type, state, users in rows:
        counts[account_id][user_type, state] += users
    return counts


def in_state(counts, state):
    return sum(users for (_type, row_state), users in counts.items() if row_state == state)


def seats_of(counts, user_type):
    """Seats held: unconfirmed and enabled users of the type (disabled users give theirs back)."""
    return sum(counts[user_type, state] for state in SEAT_STATES)


def recount(account, fix=False):
    """The drifts (helpers.counter_drift) between the account's user counters and a count of
    its users; with `fix`, the counters are rewritten. The account row is locked first, as for a
    license check, so no seat is claimed meanwhile."""
    with transaction.atomic():
        locked = PortalAccount.objects.select_for_update().get(pk=account.pk)
        counted = (
            User.objects.filter(kind=UserKind.PORTAL, portal_account=locked)
            .values("user_type", "state")
            .annotate(n=Count("pk"))
            .order_by()
        )
        return counter_drift.drifts(
            UserCount, {"portal_account": locked}, ("user_type", "state"), "users", counted, fix
        )


def role_users():
    """How many users have each role (RoleCount), as an annotation of a Role queryset."""
    kept = RoleCount.objects.filter(role=OuterRef("pk")).values("users")[:1]
    return Coalesce(Subquery(kept), 0)


def recount_roles(account, fix=False):
    """The same check for the users per role (RoleCount)."""
    with transaction.atomic():
        counted = (
            User.objects.filter(portal_account=account, role__isnull=False)
            .values("role_id")
            .annotate(n=Count("pk"))
            .order_by()
        )
        return counter_drift.drifts(
            RoleCount, {"portal_account": account}, ("role_id",), "users", counted, fix
        )
