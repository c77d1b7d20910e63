"""The one place that decides which tenant data a signed-in console person (or an API token)
may see.

Every console view and API endpoint gets its portal account, users, contacts, roles and audit
events through these functions; nothing outside them filters by portal account by hand.
Anything out of scope is a 404, so a guessed id reveals nothing."""

from django.shortcuts import get_object_or_404

from accounts.models import AuditEvent, PortalAccount, Role, User, UserKind
from api.models import ApiToken
from contacts.models import Contact


def portal_accounts(person):
    """What a console person, or an API token (its own account only), may reach."""
    if isinstance(person, ApiToken):
        return PortalAccount.objects.filter(pk=person.portal_account_id)
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


def contacts(person, account):
    return Contact.objects.filter(
        portal_account__in=portal_accounts(person), portal_account=account
    )


def get_contact(person, account, contact_pk):
    return get_object_or_404(contacts(person, account), pk=contact_pk)


def roles(person, account):
    return Role.objects.filter(portal_account__in=portal_accounts(person), portal_account=account)


def get_role(person, account, role_id):
    return get_object_or_404(roles(person, account), pk=role_id)


def api_tokens(person, account):
    return ApiToken.objects.filter(
        portal_account__in=portal_accounts(person), portal_account=account
    )


def get_api_token(person, account, token_id):
    return get_object_or_404(api_tokens(person, account), pk=token_id)


def audit_events(person, account=None):
    """An account's events, or (account None) every event: MSSP admins only."""
    if account is None:
        return (
            AuditEvent.objects.all()
            if person.kind == UserKind.MSSP_ADMIN
            else AuditEvent.objects.none()
        )
    return AuditEvent.objects.filter(
        portal_account__in=portal_accounts(person), portal_account=account
    )
