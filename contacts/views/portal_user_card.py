"""The Portal user card on a contact's page: enable the contact as a portal user, and act on
the user it has. An HTMX request gets the card alone (a partial of the contact page); a plain
POST redirects back to the page with a message. Errors show in the card with a 4xx and change
nothing. A new magic link exists only in the response to the POST that made it, which is not
cached."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from django_htmx.http import retarget

from accounts import lifecycle, magic_links, scoping
from accounts.errors import LifecycleError
from accounts.permissions import check_may_act_on, console_view, may_act_on, step_up
from accounts.portal_sections import SECTIONS
from contacts.card_actions import (
    CARD_ACTIONS,
    ENABLE,
    END_SESSIONS,
    MAGIC_LINK,
    RESEND_CONFIRMATION,
    asks_first,
    console_card_actions,
    console_card_may,
    may_issue_magic_link,
    refusal,
)
from contacts.contact_listing import portal_status, portal_user
from contacts.forms import CardRoleForm, EnablePortalUserForm
from helpers.client_ip import client_ip

TEMPLATE = "contacts/contact.html"


def contact_context(request, account, contact, **extra):
    """Everything the contact page and its card show."""
    person, user = request.user, portal_user(contact)
    actions = console_card_actions(person, user)
    context = {
        "account": account,
        "section": "contacts",
        "contact": contact,
        "portal_user": user,
        "status": portal_status(contact),
        "may_act": user is None or may_act_on(person, user),
        # The role picker is a form of its own; the other actions are buttons, each with what
        # it does to the person, and whether it asks first.
        "actions": [
            (a, a.describe(user), asks_first(a)) for a in actions if a.name != "change-role"
        ],
        "role_form": None,
        "enable_form": None,
        "can_magic_link": may_issue_magic_link(person, user),
        "sections": SECTIONS,
    }
    if user is None and not contact.is_deleted:
        context["enable_form"] = EnablePortalUserForm(person=person, account=account)
    if any(a.name == "change-role" for a in actions):
        context["role_form"] = CardRoleForm(
            person=person, account=account, user=user, initial={"role": user.role_id}
        )
    context.update(extra)
    return context


def render_contact(request, account, contact_pk, partial=None, status=200, **extra):
    """The contact as it is now (reloaded after a change): the page, or one of its partials."""
    contact = scoping.get_contact(request.user, account, contact_pk)
    context = contact_context(request, account, contact, **extra)
    template = f"{TEMPLATE}#{partial}" if partial else TEMPLATE
    return render(request, template, context, status=status)


def _card(request, account, contact, status=200, **extra):
    """After a card action: the card for HTMX, else the page (errors, a new magic link)."""
    partial = "card" if request.htmx else None
    return render_contact(
        request, account, contact.pk, partial, status, card_messages=bool(request.htmx), **extra
    )


def _done(request, account, contact, message):
    messages.success(request, message)
    if request.htmx:
        return _card(request, account, contact)
    return redirect("contact", slug=account.slug, contact_pk=contact.pk)


def confirm(request, context, status=200):
    """A confirmation: a <dialog> for HTMX, a page of its own without JavaScript."""
    if request.htmx:
        response = render(request, "contacts/confirm.html#dialog", context, status=status)
        return retarget(response, "#dialog-slot")
    return render(request, "contacts/confirm.html", context, status=status)


@never_cache
@console_view
@require_http_methods(["GET", "POST"])
def portal_user_action(request, slug, contact_pk, action):
    account = scoping.get_portal_account(request.user, slug)
    contact = scoping.get_contact(request.user, account, contact_pk)
    if action == ENABLE:
        return _enable(request, account, contact)
    actions = {
        **CARD_ACTIONS,
        END_SESSIONS.name: END_SESSIONS,
        RESEND_CONFIRMATION.name: RESEND_CONFIRMATION,
    }
    if action != MAGIC_LINK and action not in actions:
        raise Http404
    user = portal_user(contact)
    if user is None:
        return _card(request, account, contact, status=409, error=refusal(contact, None))
    check_may_act_on(request.user, user)
    if action == MAGIC_LINK:
        return _magic_link(request, account, contact, user)
    return _user_action(request, account, contact, user, actions[action])


def _enable(request, account, contact):
    if request.method != "POST":
        return redirect("contact", slug=account.slug, contact_pk=contact.pk)
    form = EnablePortalUserForm(request.POST, person=request.user, account=account)
    if not form.is_valid():
        return _card(request, account, contact, status=400, enable_form=form)
    data = form.cleaned_data
    try:
        user = lifecycle.invite(
            account,
            role=data["role"],
            by=request.user,
            contact=contact,
            send_email=data["send_invitation"],
            ip=client_ip(request),
        )
    except LifecycleError as error:
        return _card(request, account, contact, status=409, error=str(error))
    sent = " and sent an invitation" if data["send_invitation"] else " (no invitation sent yet)"
    return _done(request, account, contact, f"{user.name} is now a portal user{sent}.")


def _user_action(request, account, contact, user, action):
    url = reverse("contact-portal-user", args=[account.slug, contact.pk, action.name])
    form = None
    if action.needs_role:
        form = CardRoleForm(
            # Bound on every POST: an empty one (`request.POST or None`) left it unbound, and
            # the error to show missing (a KeyError, a 500).
            request.POST if request.method == "POST" else None,
            person=request.user,
            account=account,
            user=user,
            initial={"role": user.role_id},
        )
    context = {
        "account": account,
        "section": "contacts",
        "title": action.ask(user),
        "consequences": [action.describe(user)],
        "details": f"{user.email or 'No email'} · {user.get_user_type_display()} · "
        f"{user.get_state_display()}",
        "post_url": url,
        "hx_target": "#portal-user-card",
        "form": form,
        "button": action.label,
        "danger": action.danger,
        "cancel_url": reverse("contact", args=[account.slug, contact.pk]),
    }
    if not console_card_may(request.user, user, action):
        error = refusal(contact, user, action)
        return _card(request, account, contact, status=409, error=error)
    if request.method != "POST":
        return confirm(request, context)
    if action.danger and not request.POST.get("confirmed"):
        # The dialog is a convenience; the server asks for the confirmation too.
        return confirm(request, context, status=400)
    if form is not None and not form.is_valid():
        return _card(request, account, contact, status=400, error=form.errors["role"][0])
    try:
        role = form.cleaned_data["role"] if form else None
        action.perform(user, request.user, client_ip(request), role)
    except LifecycleError as error:
        return _card(request, account, contact, status=409, error=str(error))
    return _done(request, account, contact, action.said(user, role))


def _magic_link(request, account, contact, user):
    if request.method != "POST":
        return redirect("contact", slug=account.slug, contact_pk=contact.pk)
    stepped_up = step_up(request)
    if stepped_up:
        return stepped_up
    section = request.POST.get("section", "")
    try:
        issued = lifecycle.issue_magic_link(
            user, by=request.user, target=section, ip=client_ip(request)
        )
    except LifecycleError as error:
        return _card(request, account, contact, status=409, error=str(error))
    return _card(request, account, contact, created=magic_links.created(account, issued))
