"""Orphaned users: partner and customer users whose CRM contact is deleted. They cannot sign in
until their contact is restored or they are moved to another contact of the same CRM account
(contacts.mirror carries out both; this module only finds who and where)."""

from django.db.models import Q

from accounts import scoping
from accounts.models import UserType

CANDIDATES_SHOWN = 20
# The order of the orphaned users page and its bulk fixes: the contacts deleted last first, which
# is the order of the deleted contacts' index (contact_deleted_by_date) read backwards, so a page
# is a walk of that index, not a sort of every orphan of the account.
NEWEST_DELETION_FIRST = ("-contact__deleted_at", "-contact__id")


def orphaned_users(person, account):
    return (
        scoping.portal_users(person, account)
        .filter(
            user_type__in=[UserType.PARTNER, UserType.CUSTOMER],
            contact__deleted_at__isnull=False,
            # Always true (a user's contact is in its account); it lets PostgreSQL start from
            # the account's deleted contacts (contact_deleted_by_name) rather than its users.
            contact__portal_account=account,
        )
        .select_related("contact", "role")
        .order_by(*NEWEST_DELETION_FIRST)
    )


def replacement_contacts(person, account, user, q=""):
    """Contacts the user may move to: live, in the same portal account and the same CRM
    account as their deleted contact, and without a portal user of their own."""
    candidates = (
        scoping.contacts(person, account)
        .live()
        .filter(crm_account_name=user.contact.crm_account_name, user__isnull=True)
    )
    q = q.strip()
    if q:
        candidates = candidates.filter(Q(email__icontains=q) | Q(name__icontains=q))
    return candidates.order_by("name", "pk")
