"""Orphaned users: partner and customer users whose CRM contact is deleted, and the two fixes,
restoring the contact or associating the user with another contact of the same CRM account."""

import re

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts import scoping
from accounts.errors import LifecycleError
from accounts.models import UserState
from accounts.permissions import check_may_act_on, console_view
from contacts import mirror
from contacts.orphan_fixes import crm_accounts_with_orphans
from contacts.orphans import (
    CANDIDATES_SHOWN,
    orphaned_users,
    replacement_contacts,
)
from contacts.views.portal_user_card import confirm
from helpers.client_ip import client_ip
from helpers.search_paging import walk_paginator
from helpers.search_terms import search_term

LIST_TEMPLATE = "contacts/orphaned_users.html"
ASSOCIATE_TEMPLATE = "contacts/associate.html"
PAGE_SIZE = 50
# An account with more orphans than this says "more than 1,000" and pages through the 1,000 whose
# contacts were deleted last; the bulk fixes above the list reach all of them.
COUNT_CAP = 1000


def _orphans_page(request, account):
    """A page of orphans: counted up to a cap (that count is what the page says), the page's ids
    read off the walk of the account's deleted contacts, newest first, then only those 50
    loaded with their contact and role, as the users page does."""
    orphans = orphaned_users(request.user, account)
    paginator = walk_paginator(orphans, PAGE_SIZE, COUNT_CAP)
    page = paginator.get_page(request.GET.get("page"))
    page.object_list = list(orphans.filter(pk__in=list(page.object_list)))
    return page


def _render_list(request, account, status=200, error=""):
    page = _orphans_page(request, account)
    context = {"account": account, "section": "orphans", "page": page, "error": error}
    if not request.htmx:  # the bulk fixes sit above the list, outside its partial
        context["crm_accounts"] = crm_accounts_with_orphans(request.user, account)
    template = f"{LIST_TEMPLATE}#orphan-list" if request.htmx else LIST_TEMPLATE
    return render(request, template, context, status=status)


@console_view
def orphaned_user_list(request, slug):
    return _render_list(request, scoping.get_portal_account(request.user, slug))


def _orphan(request, slug, user_id):
    account = scoping.get_portal_account(request.user, slug)
    user = scoping.get_portal_user(request.user, account, user_id)
    check_may_act_on(request.user, user)
    if not user.contact_deleted:
        # Fixed a moment ago by someone else, or never orphaned: say so, change nothing.
        return account, user, f"{user.name} is not an orphaned user: their contact is not deleted."
    return account, user, ""


def _fixed(request, account, user, message):
    messages.success(request, message)
    if request.htmx:
        return _render_list(request, account)
    return redirect("orphaned-users", slug=account.slug)


def _sign_in_note(user):
    if user.state == UserState.ENABLED and user.pending_email:
        return (
            f"{user.name} can sign in again as {user.email}, and as {user.pending_email} once "
            "that address confirms it (a link went to it)."
        )
    if user.state == UserState.ENABLED:
        return f"{user.name} can sign in again as {user.email}."
    return f"{user.name} is {user.get_state_display().lower()}, as before."


@console_view
@require_POST
def restore_orphan_contact(request, slug, user_id):
    account, user, error = _orphan(request, slug, user_id)
    if not error:
        try:
            mirror.restore_contact(user.contact, by=request.user, ip=client_ip(request))
        except LifecycleError as refused:
            error = str(refused)
    if error:
        return _render_list(request, account, status=409, error=error)
    return _fixed(
        request, account, user, f"Contact {user.contact.name} restored. {_sign_in_note(user)}"
    )


@console_view
@require_http_methods(["GET", "POST"])
def associate(request, slug, user_id):
    account, user, error = _orphan(request, slug, user_id)
    if error:
        return _render_list(request, account, status=409, error=error)
    chosen = request.POST.get("contact") or request.GET.get("contact")
    if chosen:
        return _confirm_move(request, account, user, chosen)
    if request.method == "POST":
        return _candidates(request, account, user, status=400, error="Pick a contact first.")
    return _candidates(request, account, user)


def _candidates(request, account, user, status=200, error=""):
    q = search_term(request.GET)
    found = list(replacement_contacts(request.user, account, user, q)[: CANDIDATES_SHOWN + 1])
    context = {
        "account": account,
        "section": "orphans",
        "orphan": user,
        "old_contact": user.contact,
        "q": q,
        "candidates": found[:CANDIDATES_SHOWN],
        "more": len(found) > CANDIDATES_SHOWN,
        "error": error,
    }
    template = f"{ASSOCIATE_TEMPLATE}#candidates" if request.htmx else ASSOCIATE_TEMPLATE
    return render(request, template, context, status=status)


def _confirm_move(request, account, user, chosen):
    if not re.fullmatch(r"[0-9]{1,18}", chosen):  # not str.isdigit(): "²" is a digit to it
        raise Http404
    contact = scoping.get_contact(request.user, account, int(chosen))
    old = user.contact
    context = {
        "account": account,
        "section": "orphans",
        "title": f"Associate {user.name} with {contact.name}?",
        "consequences": [
            f"{user.name} ({user.email or 'no email'}) moves from the deleted contact {old.name} "
            f"({old.contact_id}) to {contact.name} ({contact.email or 'no email'}, "
            f"{contact.contact_id}) of {contact.crm_account_name or 'the same CRM account'}.",
            f"Their name and email become the contact's ({contact.name}, "
            f"{contact.email or 'their email stays'}); their password, role and state stay as "
            "they are. The deleted contact is left without a portal user.",
        ],
        "post_url": reverse("orphan-associate", args=[account.slug, user.pk]),
        "hidden": [("contact", contact.pk)],
        "confirm_value": f"contact-{contact.pk}",
        "button": "Associate",
        "cancel_url": reverse("orphan-associate", args=[account.slug, user.pk]),
    }
    if request.method != "POST":
        return confirm(request, context)
    if request.POST.get("confirmed") != context["confirm_value"]:
        return confirm(request, context, status=400)
    try:
        moved = mirror.move_user_to_contact(user, contact, by=request.user, ip=client_ip(request))
    except LifecycleError as error:
        context["error"] = str(error)
        return confirm(request, context, status=409)
    return _fixed(
        request,
        account,
        moved,
        f"{user.name} is now associated with the contact {contact.name}. {_sign_in_note(moved)}",
    )
