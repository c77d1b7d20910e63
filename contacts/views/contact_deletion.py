"""Deleting a contact from the console (a soft delete, like the CRM's recycle bin) and
restoring it. Deleting the contact of a user who can sign in locks that user out, so the
confirmation names them, and the server insists on that very confirmation: one made before
the contact gained a user does not count."""

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts import scoping
from accounts.errors import LifecycleError
from accounts.models import UserState
from accounts.permissions import check_may_act_on, console_view
from contacts import mirror
from contacts.contact_listing import portal_user
from contacts.views.portal_user_card import confirm, render_contact
from helpers.client_ip import client_ip


def _contact(request, slug, contact_pk):
    account = scoping.get_portal_account(request.user, slug)
    contact = scoping.get_contact(request.user, account, contact_pk)
    user = portal_user(contact)
    if user is not None:
        check_may_act_on(request.user, user)  # an account admin keeps their own contact
    return account, contact, user


def _consequences(user):
    if user is None:
        return [
            "The contact has no portal user. It is marked deleted, as in the CRM's recycle bin."
        ]
    who = f"{user.name} ({user.email or 'no email'})"
    orphaned = (
        "Their portal user stays and is listed under Orphaned users until the contact is "
        "restored or the user is associated with another contact."
    )
    if user.state == UserState.ENABLED:
        return [f"{who} will no longer be able to sign in to the portal.", orphaned]
    if user.state == UserState.UNCONFIRMED:
        return [f"{who} will not be able to activate their login or sign in.", orphaned]
    return [f"{who} is disabled already and stays unable to sign in.", orphaned]


def _back(request, account, contact, message):
    messages.success(request, message)
    if request.htmx:
        return render_contact(request, account, contact.pk, "contact-body", body_messages=True)
    return redirect("contact", slug=account.slug, contact_pk=contact.pk)


@console_view
@require_http_methods(["GET", "POST"])
def delete_contact(request, slug, contact_pk):
    account, contact, user = _contact(request, slug, contact_pk)
    # The confirmation names the user it was given for.
    expected = f"user-{user.pk}" if user is not None else "no-user"
    context = {
        "account": account,
        "section": "contacts",
        "title": f"Delete the contact {contact.name}?",
        "consequences": [*_consequences(user), "You can restore the contact from its page."],
        "details": f"{contact.email or 'No email'} · {contact.contact_id}",
        "post_url": reverse("contact-delete", args=[account.slug, contact.pk]),
        "hx_target": "#contact-body",
        "confirm_value": expected,
        "button": "Delete contact",
        "danger": True,
        "cancel_url": reverse("contact", args=[account.slug, contact.pk]),
    }
    if contact.is_deleted:
        context["error"] = f"{contact.name} is deleted already. Restore it from its page."
        return confirm(request, context, status=409 if request.method == "POST" else 200)
    if request.method != "POST":
        return confirm(request, context)
    if request.POST.get("confirmed") != expected:
        if request.POST.get("confirmed"):
            context["error"] = "The contact changed since you opened this. Read it again."
        return confirm(request, context, status=400)
    try:
        mirror.delete_contact(contact, by=request.user, ip=client_ip(request))
    except LifecycleError as error:
        context["error"] = str(error)
        return confirm(request, context, status=409)
    locked_out = f" {user.name} can no longer sign in." if user is not None else ""
    return _back(request, account, contact, f"Contact {contact.name} deleted.{locked_out}")


@console_view
@require_POST
def restore_contact(request, slug, contact_pk):
    account, contact, user = _contact(request, slug, contact_pk)
    try:
        mirror.restore_contact(contact, by=request.user, ip=client_ip(request))
    except LifecycleError as error:
        partial = "contact-body" if request.htmx else None
        return render_contact(
            request, account, contact.pk, partial, 409, body_error=str(error), body_messages=True
        )
    back = ""
    if user is not None and user.state == UserState.ENABLED:
        back = f" {user.name} can sign in again."
    return _back(request, account, contact, f"Contact {contact.name} restored.{back}")
