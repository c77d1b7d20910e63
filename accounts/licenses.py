"""License seats: unconfirmed and enabled users of a user type hold one; disabled users don't."""

from accounts import user_counts
from accounts.errors import NoLicensesLeft
from accounts.models import PortalAccount, UserCount, UserType


def seats_used(portal_account, user_type):
    """From the account's counters: a read of a few rows, however many users it has."""
    counters = UserCount.objects.filter(portal_account=portal_account, user_type=user_type)
    return user_counts.seats_of(user_counts.counts_of(counters), user_type)


def claim_seat(portal_account, user_type):
    """Check a seat is free for one more user of this type. Call inside the transaction that
    takes the seat: the account row stays locked until it commits, so two admins racing for
    the last seat are served one after the other and the second one sees it taken."""
    locked = PortalAccount.objects.select_for_update().get(pk=portal_account.pk)
    limit = locked.licenses_for(user_type)
    used = seats_used(locked, user_type)
    if used >= limit:
        label = UserType(user_type).label
        raise NoLicensesLeft(f"No {label} licenses left: {used} of {limit} in use.")
