"""A contact's portal access as the API (and a CRM card) sees it: the contact, its portal user,
what may be done with that user now, and the roles to pick from.

The per-state rules are the console card's (contacts.card_actions, built on the users page's
actions), so the API offers and refuses exactly what the card does; only the names follow the
API's URLs ("reactivate" for the card's "enable", "enable" for giving a contact a user)."""

from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404

from accounts import scoping
from accounts.models import CONTACT_USER_TYPES
from api.models import ApiToken
from contacts.card_actions import CARD_ACTIONS, card_actions, may_issue_magic_link
from contacts.card_actions import refusal as card_refusal
from contacts.contact_listing import portal_user
from contacts.models import CONTACT_ID_LENGTH
from contacts.salesforce_ids import InvalidSalesforceId, to_18

ENABLE = "enable"
MAGIC_LINK = "magic-link"
_API_NAMES = {"enable": "reactivate"}  # the card's name -> the API's
_CARD_NAMES = {api: card for card, api in _API_NAMES.items()}


def get_contact(token, account, ref):
    """A contact of the account by its 19-character contact id or its 15/18-character
    Salesforce id; 404 for anything else."""
    if not (ref.isascii() and ref.isalnum()):  # ids are letters and digits, nothing else
        raise Http404
    if len(ref) == CONTACT_ID_LENGTH:
        condition = Q(contact_id=ref)
    else:
        try:
            condition = Q(salesforce_id=to_18(ref))
        except InvalidSalesforceId:
            condition = Q(pk__in=[])
    contacts = scoping.contacts(token, account).select_related("user__role")
    return get_object_or_404(contacts, condition)


def allowed_actions(token, contact):
    """The API actions the rules allow the token on the contact's portal access now: none for
    a token whose scope does not reach the actions, so a card shows no button that would fail."""
    if not token.allows(ApiToken.Scope.FULL):
        return []
    user = portal_user(contact)
    if user is None:
        return [] if contact.is_deleted else [ENABLE]
    names = [_API_NAMES.get(action.name, action.name) for action in card_actions(token, user)]
    if may_issue_magic_link(token, user):
        names.append(MAGIC_LINK)
    return names


def card_action(name):
    """The card's action (label, lifecycle call) behind an API action on an existing user."""
    return CARD_ACTIONS[_CARD_NAMES.get(name, name)]


def refusal(contact, action):
    """Why an API action the rules do not allow now is refused: the card's own words."""
    user = portal_user(contact)
    return card_refusal(contact, user, None if user is None else card_action(action))


def _when(value):
    return value.isoformat() if value else None


def status(token, account, contact):
    """The body of every portal-user answer."""
    user = portal_user(contact)
    return {
        "contact": {
            "contact_id": contact.contact_id,
            "salesforce_id": contact.salesforce_id,
            "name": contact.name,
            "email": contact.email,
            "crm_account_name": contact.crm_account_name,
            "deleted": contact.is_deleted,
        },
        "portal_user": None
        if user is None
        else {
            "id": user.pk,
            "state": user.state,
            "user_type": user.user_type,
            "role": user.role.name if user.role_id else None,
            "email": user.email,
            "is_account_admin": user.is_account_admin,
            "invited_at": _when(user.invited_at),
            "activated_at": _when(user.activated_at),
            "last_login": _when(user.last_login),
            "access_ends_on": _when(user.access_ends_on),
        },
        "allowed_actions": allowed_actions(token, contact),
        # A contact's user is a partner or customer: employee roles are not for contacts.
        "roles": list(
            scoping.roles(token, account)
            .filter(active=True, user_type__in=CONTACT_USER_TYPES)
            .order_by("name")
            .values_list("name", flat=True)
        ),
    }
