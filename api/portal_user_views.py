"""The portal-user API for CRM cards and workflows, under
/api/v1/accounts/<slug>/contacts/<contact_ref>/portal-user/: a contact's portal access and what
may be done with it, and the actions themselves, through the same lifecycle functions, rules and
messages as the Portal user card on the contact's page. A role decides the user's type: enabling
with a role of one type and a `user_type` of another is a 400, and changing to a role of another
type changes the user's type (and takes that type's license).

Looking up needs a token with the "read" or "full" scope; every action (magic links and the
account admin's user included) needs "full".

Answers are JSON: the contact's status after a change, or {"error", "errors"} with 400 (a body
the API cannot use, an unknown or inactive role), 403 (the token's scope is too narrow), 404 (no
such contact for this token), 405 (another method) or 409 (the rules refuse: wrong state, no
licenses left). A refused request changes nothing."""

from dataclasses import dataclass
from datetime import date

from django.db import transaction
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from accounts import lifecycle, magic_links
from accounts.errors import LifecycleError
from accounts.models import UserType
from accounts.models.user import access_end_problem
from accounts.role_names import AccountRoles, RoleNameError
from api import portal_user_status
from api.authentication import api_view
from api.json_io import BadPayload, read_json_object
from api.models import ApiToken
from api.portal_user_status import allowed_actions, card_action, get_contact, refusal
from contacts.contact_listing import portal_user
from helpers.client_ip import client_ip

Scope = ApiToken.Scope


@dataclass(frozen=True)
class Field:
    kind: type
    required: bool = False
    choices: tuple = ()


_KIND_WORDS = {str: "a string", bool: "true or false"}
ROLE = {"role": Field(str, required=True)}
TARGET = {"target": Field(str, choices=lifecycle.PORTAL_SECTIONS)}
ENABLE_FIELDS = {
    **ROLE,
    # Optional: the role decides the user type; one sent must be the role's (400 otherwise).
    "user_type": Field(str, choices=(UserType.PARTNER.value, UserType.CUSTOMER.value)),
    "send_invitation": Field(bool),
    "access_ends_on": Field(str),
}
ACCESS_END = {"access_ends_on": Field(str)}


def read_fields(request, fields):
    """The body's fields (an empty body has none; null is as good as absent); BadPayload
    listing every wrong field."""
    body = read_json_object(request, empty_ok=True)
    errors = [
        {"field": name, "message": f"Unknown field. Use: {', '.join(fields) or 'none'}."}
        for name in body
        if name not in fields
    ]
    for name, field in fields.items():
        value = body.get(name)
        if value is None:
            if field.required:
                errors.append({"field": name, "message": "This field is required."})
        elif type(value) is not field.kind:  # exactly: JSON true is no string, 1 no boolean
            errors.append({"field": name, "message": f"Must be {_KIND_WORDS[field.kind]}."})
        elif field.choices and value not in field.choices:
            choices = ", ".join(field.choices)
            errors.append({"field": name, "message": f"Must be one of: {choices}."})
    if errors:
        raise BadPayload("The body has errors: see 'errors'.", errors)
    return {name: value for name, value in body.items() if value is not None}


def role_named(account, name):
    """The account's active role of that exact name: the CSV import's rule and messages."""
    try:
        return AccountRoles(account).find(name.strip(), missing="Give a role: one of {active}.")
    except RoleNameError as error:
        raise BadPayload(error.message, [{"field": "role", "message": error.message}]) from None


def _answer(request, account, contact, status=200):
    body = portal_user_status.status(request.api_token, account, contact)
    return JsonResponse(body, status=status)


def _answer_after_change(request, account, contact, status=200):
    fresh = get_contact(request.api_token, account, contact.contact_id)
    return _answer(request, account, fresh, status)


@api_view("GET", scope=Scope.READ)
def portal_user_status_view(request, account, contact_ref):
    contact = get_contact(request.api_token, account, contact_ref)
    return _answer(request, account, contact)


@api_view("POST", scope=Scope.FULL)
def enable(request, account, contact_ref):
    contact = get_contact(request.api_token, account, contact_ref)
    body = read_fields(request, ENABLE_FIELDS)
    role = role_named(account, body["role"])
    mismatch = lifecycle.role_type_mismatch(role, body.get("user_type"))
    if mismatch:
        raise BadPayload(mismatch, [{"field": "user_type", "message": mismatch}])
    ends_on = access_end_in(body)
    with transaction.atomic():  # the user and their end date, or neither
        user = lifecycle.invite(
            account,
            role=role,
            by=None,
            contact=contact,
            send_email=body.get("send_invitation", True),
            ip=client_ip(request),
        )
        if ends_on:
            lifecycle.set_access_end(user, ends_on, by=None, ip=client_ip(request))
    return _answer_after_change(request, account, contact, status=201)


def access_end_in(body):
    """The body's access end date (None: no end); BadPayload when it is no date or not one the
    rules allow (lifecycle.set_access_end's)."""
    value = body.get("access_ends_on")
    if value is None:
        return None
    try:
        ends_on = date.fromisoformat(value.strip()) if len(value) == 10 else None
    except ValueError:
        ends_on = None
    problem = (
        "Must be a date as YYYY-MM-DD, or null for no end."
        if ends_on is None
        else access_end_problem(ends_on, timezone.now().date())
    )
    if problem:
        raise BadPayload(problem, [{"field": "access_ends_on", "message": problem}])
    return ends_on


@api_view("POST", scope=Scope.FULL)
def access_end(request, account, contact_ref):
    """Set the user's access end date ({"access_ends_on": "2027-01-31"}), or clear it (null)."""
    contact = get_contact(request.api_token, account, contact_ref)
    ends_on = access_end_in(read_fields(request, ACCESS_END))
    user = portal_user(contact)
    if user is None:
        raise LifecycleError(f"{contact.name} has no portal user: enable one first.")
    lifecycle.set_access_end(user, ends_on, by=None, ip=client_ip(request))
    return _answer_after_change(request, account, contact)


def _user_action(name, fields=None, status=200, perform=None):
    """A POST on the contact's portal user, allowed only when the card would offer it, done by
    the card's own lifecycle call unless `perform(user, ip, body)` is given."""

    @api_view("POST", scope=Scope.FULL)
    def view(request, account, contact_ref):
        contact = get_contact(request.api_token, account, contact_ref)
        body = read_fields(request, fields or {})
        role = role_named(account, body["role"]) if "role" in body else None
        if name not in allowed_actions(request.api_token, contact):
            raise LifecycleError(refusal(contact, name))
        user, ip = portal_user(contact), client_ip(request)
        if perform:
            perform(user, ip, body)
        else:
            card_action(name).perform(user, None, ip, role)
        return _answer_after_change(request, account, contact, status=status)

    view.__name__ = view.__qualname__ = name.replace("-", "_")
    return view


disable = _user_action("disable")
reactivate = _user_action("reactivate")
reinvite = _user_action("reinvite")
delete = _user_action("delete")
reset_password = _user_action("reset-password")
change_role = _user_action("change-role", fields=ROLE)
send_login_email = _user_action(
    "send-login-email",
    fields=TARGET,
    status=202,  # the email is queued, not sent yet
    perform=lambda user, ip, body: lifecycle.send_login_email(
        user, by=None, target=body.get("target", ""), ip=ip
    ),
)


@never_cache  # the link's secret exists only in this answer
@api_view("POST", scope=Scope.FULL)
def magic_link(request, account, contact_ref):
    """A one-time sign-in link for the caller to hand over: the lifecycle's own rules and
    messages (as the card and the user's Sign-in links page)."""
    contact = get_contact(request.api_token, account, contact_ref)
    target = read_fields(request, TARGET).get("target", "")
    user = portal_user(contact)
    if user is None:
        raise LifecycleError(refusal(contact, "magic-link"))
    issued = lifecycle.issue_magic_link(user, by=None, target=target, ip=client_ip(request))
    created = magic_links.created(account, issued)
    return JsonResponse(
        {
            "url": created["url"],
            "expires_at": created["expires_at"].isoformat(),
            "target": created["target"] or None,
        }
    )
