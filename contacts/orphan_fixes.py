"""The orphan fixes for many users at once: restore the deleted contacts of one CRM account
(the contacts that carry orphaned users), or disable every orphaned user who could still be
signed in. Each user is changed in a transaction of their own, with its audit event, through
the same functions as the one-by-one fixes, so a refusal for one user (a merged contact, a
concurrent change) is that row's outcome and stops nobody else. A run takes at most
BULK_ACTION_MAX_USERS users and says how many are left for the next."""

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import PermissionDenied

from accounts import lifecycle
from accounts.errors import LifecycleError
from accounts.models import UserState
from accounts.permissions import check_may_act_on
from contacts import mirror
from contacts.orphans import orphaned_users

# The CRM accounts offered are read from this many orphans: enough for any real clean-up,
# and a bound on the query when an account has many.
CRM_ACCOUNTS_READ_FROM = 1000


@dataclass(frozen=True)
class Outcome:
    user: object
    done: bool
    text: str


def crm_accounts_with_orphans(person, account):
    names = orphaned_users(person, account).values_list("contact__crm_account_name", flat=True)
    return sorted({name for name in names[:CRM_ACCOUNTS_READ_FROM] if name})


def orphans_of_crm_account(person, account, crm_account_name):
    return orphaned_users(person, account).filter(contact__crm_account_name=crm_account_name)


def orphans_to_disable(person, account):
    return orphaned_users(person, account).filter(
        state__in=[UserState.ENABLED, UserState.UNCONFIRMED]
    )


def first_of_run(selected):
    """The users a run takes, in the page's order, and how many it leaves."""
    limit = settings.BULK_ACTION_MAX_USERS
    taken = list(selected[: limit + 1])
    return taken[:limit], len(taken) > limit


def restore_contacts(person, users, *, ip=None):
    def restore(user):
        mirror.restore_contact(user.contact, by=person, ip=ip)
        if user.state == UserState.ENABLED:
            return "Contact restored: can sign in again."
        return f"Contact restored: {user.get_state_display().lower()}, as before."

    return [_outcome(person, user, restore) for user in users]


def disable_users(person, users, *, ip=None):
    def disable(user):
        lifecycle.disable(user, by=person, ip=ip)
        return "Disabled."

    return [_outcome(person, user, disable) for user in users]


def _outcome(person, user, change):
    try:
        check_may_act_on(person, user)
        return Outcome(user, True, change(user))
    except (LifecycleError, PermissionDenied) as refused:
        return Outcome(user, False, str(refused))
