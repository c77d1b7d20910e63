"""How full a portal account is: users per state and license seats per user type, read from the
accounts' user counters (accounts.user_counts), one query for one account or for the list."""

from dataclasses import dataclass

from accounts import user_counts
from accounts.models import UserState, UserType

# At this share of a user type's licenses the console warns that the account is nearly full.
NEAR_LIMIT_PERCENT = 80


@dataclass(frozen=True)
class SeatUse:
    user_type: UserType
    used: int
    limit: int

    @property
    def label(self):
        return f"{self.used} of {self.limit} used"

    @property
    def percent(self):
        if not self.limit:
            return 100 if self.used else 0
        return min(100, self.used * 100 // self.limit)

    @property
    def over_limit(self):
        return self.used > self.limit

    @property
    def near_limit(self):
        # A type with no licenses and no users is simply not sold to this account.
        if not self.limit:
            return self.used > 0
        return self.used * 100 >= self.limit * NEAR_LIMIT_PERCENT

    @property
    def status(self):
        """Words for the warning, so that it never relies on colour alone."""
        if self.over_limit:
            return "Over limit"
        if self.limit and self.used >= self.limit:
            return "Full"
        if self.near_limit:
            return "Nearly full"
        return ""


@dataclass(frozen=True)
class Usage:
    unconfirmed: int
    enabled: int
    disabled: int
    seats: tuple[SeatUse, ...]

    @property
    def warnings(self):
        return [seat for seat in self.seats if seat.near_limit]

    @property
    def over_limit(self):
        return [seat for seat in self.seats if seat.over_limit]


def _usage(account, counts):
    return Usage(
        unconfirmed=user_counts.in_state(counts, UserState.UNCONFIRMED),
        enabled=user_counts.in_state(counts, UserState.ENABLED),
        disabled=user_counts.in_state(counts, UserState.DISABLED),
        seats=tuple(
            SeatUse(
                user_type, user_counts.seats_of(counts, user_type), account.licenses_for(user_type)
            )
            for user_type in UserType
        ),
    )


def for_accounts(accounts):
    """(account, usage) for every account of a queryset already scoped to the viewer."""
    accounts = list(accounts.order_by("name", "pk"))
    counts = user_counts.by_account(accounts)
    return [(account, _usage(account, counts[account.pk])) for account in accounts]


def for_account(account, counters):
    """The usage of one account, from its counters as accounts.scoping.user_counts returns
    them. The states are the Users page's tabs, so a count here is the count on the tab it
    links to."""
    return _usage(account, user_counts.counts_of(counters))
