"""How full a portal account is: users per state and license seats per user type, counted in
one query whether for one account or for the whole list of accounts."""

from dataclasses import dataclass

from django.db.models import Count, Q

from accounts.models import UserState, UserType
from accounts.models.user import SEAT_STATES

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


def _count_filters(prefix):
    def q(**lookups):
        return Q(**{prefix + key: value for key, value in lookups.items()})

    # The same split as the Users page tabs (accounts.user_listing): by state, so a count here is
    # the count on the tab it links to. A user whose CRM contact is deleted stays under their
    # state there, marked orphaned (the dashboard warns about them separately).
    filters = {
        "unconfirmed_count": q(state=UserState.UNCONFIRMED),
        "enabled_count": q(state=UserState.ENABLED),
        "disabled_count": q(state=UserState.DISABLED),
    }
    for user_type in UserType.values:
        filters[f"{user_type}_used"] = q(user_type=user_type, state__in=SEAT_STATES)
    return filters


def _usage(account, counts):
    return Usage(
        unconfirmed=counts["unconfirmed_count"],
        enabled=counts["enabled_count"],
        disabled=counts["disabled_count"],
        seats=tuple(
            SeatUse(user_type, counts[f"{user_type}_used"], account.licenses_for(user_type))
            for user_type in UserType
        ),
    )


def for_accounts(accounts):
    """(account, usage) for every account of a queryset already scoped to the viewer."""
    filters = _count_filters("users__")
    # An aggregate drops the model's default ordering, so the order is said again.
    annotated = accounts.annotate(
        **{name: Count("users", filter=condition) for name, condition in filters.items()}
    ).order_by("name", "pk")
    return [
        (account, _usage(account, {name: getattr(account, name) for name in filters}))
        for account in annotated
    ]


def for_account(account, users):
    """The usage of one account, from its users as the scoping helper returns them."""
    filters = _count_filters("")
    counts = users.aggregate(
        **{name: Count("pk", filter=condition) for name, condition in filters.items()}
    )
    return _usage(account, counts)
