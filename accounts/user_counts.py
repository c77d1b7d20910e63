"""Reading the per-account user counters (accounts.models.UserCount) and checking them.

Everything that needs how many users an account has (tab counts, seat use, license checks)
reads them here: a few rows per account, whatever the account's size. The database keeps them
(see the model); `recount` is the audit that they are right."""

from collections import Counter
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count

from accounts.models import PortalAccount, User, UserCount, UserKind
from accounts.models.user import SEAT_STATES


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


@dataclass(frozen=True)
class Drift:
    account: PortalAccount
    user_type: str
    state: str
    counted: int
    kept: int

    def __str__(self):
        return (
            f"{self.account.slug}: {self.user_type} {self.state} users: {self.kept} kept, "
            f"{self.counted} counted"
        )


def recount(account, fix=False):
    """Count the account's users the slow way and compare with the counters; with `fix`,
    rewrite the counters that differ. The account row and its counters are locked first, so a
    change to a user either committed before the count (and is in it) or waits for the fix."""
    with transaction.atomic():
        locked = PortalAccount.objects.select_for_update().get(pk=account.pk)
        kept = counts_of(UserCount.objects.select_for_update().filter(portal_account=locked))
        counted = Counter(
            {
                (row["user_type"], row["state"]): row["n"]
                for row in User.objects.filter(kind=UserKind.PORTAL, portal_account=locked)
                .values("user_type", "state")
                .annotate(n=Count("pk"))
                .order_by()
            }
        )
        drifts = [
            Drift(locked, user_type, state, counted[user_type, state], kept[user_type, state])
            for user_type, state in sorted(set(counted) | set(kept))
            if counted[user_type, state] != kept[user_type, state]
        ]
        if fix:
            for drift in drifts:
                UserCount.objects.update_or_create(
                    portal_account=locked,
                    user_type=drift.user_type,
                    state=drift.state,
                    defaults={"users": drift.counted},
                )
        return drifts
