"""The one place that decides which tenant data a signed-in console person (or an API token)
may see.

Every console view and API endpoint gets its portal account, users, contacts, roles and audit
events through these functions; nothing outside them filters by portal account by hand.
Anything out of scope is a 404, so a guessed id reveals nothing."""

from django.shortcuts import get_object_or_404

from accounts import actors
from accounts.models import AuditEvent, PortalAccount, Role, User, UserCount, UserKind
from contacts.models import Contact, ContactCount, CrmAccount


def portal_accounts(person):
    """What a console person, or a registered actor such as an API token (its own account only),
    may reach."""
    if actors.is_account_actor(person):
        return PortalAccount.objects.filter(pk=actors.account_id_of(person))
    if person.is_mssp:
        return PortalAccount.objects.all()
    if person.can_use_console():
        return PortalAccount.objects.filter(pk=person.portal_account_id)
    return PortalAccount.objects.none()


def get_portal_account(person, slug):
    return get_object_or_404(portal_accounts(person), slug=slug)


def portal_users(person, account):
    """Portal users of an account already obtained through get_portal_account."""
    return User.objects.filter(
        kind=UserKind.PORTAL, portal_account__in=portal_accounts(person), portal_account=account
    )


def get_portal_user(person, account, user_id):
    return get_object_or_404(portal_users(person, account), pk=user_id)


def account_rows(person, account, rows):
    """`rows` (a manager or queryset of a model with a portal_account) narrowed to `account`,
    which must be within the person's reach. How every per-account model is scoped, the other
    apps' own models too (the api's tokens)."""
    return rows.filter(portal_account__in=portal_accounts(person), portal_account=account)


def get_account_row(person, account, rows, pk):
    return get_object_or_404(account_rows(person, account, rows), pk=pk)


def user_counts(person, account):
    """The account's user counters (accounts.user_counts reads them)."""
    return account_rows(person, account, UserCount.objects)


def contact_counts(person, account):
    """The account's live and deleted contact counters (contacts.contact_listing reads them)."""
    return account_rows(person, account, ContactCount.objects)


def contacts(person, account):
    return account_rows(person, account, Contact.objects)


def crm_accounts(person, account):
    """The names of the CRM accounts the account's contacts belong to (contacts.crm_accounts)."""
    return account_rows(person, account, CrmAccount.objects)


def get_contact(person, account, contact_pk):
    return get_object_or_404(contacts(person, account), pk=contact_pk)


def roles(person, account):
    return account_rows(person, account, Role.objects)


def get_role(person, account, role_id):
    return get_object_or_404(roles(person, account), pk=role_id)


def audit_events(person, account=None):
    """An account's events, or (account None) every event: MSSP admins only."""
    if account is None:
        return (
            AuditEvent.objects.all()
            if person.kind == UserKind.MSSP_ADMIN
            else AuditEvent.objects.none()
        )
    return account_rows(person, account, AuditEvent.objects)
