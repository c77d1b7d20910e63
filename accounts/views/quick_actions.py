"""The dashboard's quick actions (as HighLevel has them): send a login email or create a magic
link for someone picked by name or email, without finding them in the Users list first. The
pick leads to the same confirmation (or Sign-in links page) as the row's Actions menu, where
the usual rules apply. Invite a contact is Add user, with its contact picker."""

from dataclasses import dataclass

from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse

from accounts import scoping
from accounts.models import UserState
from accounts.permissions import console_view
from helpers.search_paging import suggestions
from helpers.search_terms import search_term


@dataclass(frozen=True)
class QuickAction:
    title: str
    button: str
    url_name: str
    url_extra: tuple = ()

    def url_for(self, account, user):
        return reverse(self.url_name, args=[account.slug, user.pk, *self.url_extra])


QUICK_ACTIONS = {
    "login-email": QuickAction(
        "Send a login email", "Continue", "user-action", ("send-login-email",)
    ),
    "magic-link": QuickAction("Create a magic link", "Continue", "user-links"),
}


@console_view
def quick_action(request, slug, quick):
    account = scoping.get_portal_account(request.user, slug)
    action = QUICK_ACTIONS.get(quick)
    if action is None:
        raise Http404("No such quick action.")
    typed = search_term(request.GET, "user")
    error = ""
    if typed:
        user = scoping.portal_users(request.user, account).filter(email=typed.lower()).first()
        if user is not None:
            return redirect(action.url_for(account, user))
        if "@" in typed:
            error = (
                f"Nobody in {account.name} has the email {typed}. Type part of a name or email "
                "and pick the person from the suggestions."
            )
        else:
            error = (
                f"'{typed}' is not an email. Type part of the person's name or email, then pick "
                "them from the suggestions (that fills in their email)."
            )
    return render(
        request,
        "accounts/quick_action.html",
        {
            "account": account,
            "section": "dashboard",
            "action": action,
            "typed": typed,
            "error": error,
        },
        status=400 if error else 200,
    )


@console_view
def user_picker(request, slug):
    """Enabled users matching what was typed, as <datalist> options whose value is the email."""
    account = scoping.get_portal_account(request.user, slug)
    term = search_term(request.GET, "user")
    users = []
    if len(term) >= 2:
        matching = (
            scoping.portal_users(request.user, account)
            .filter(state=UserState.ENABLED)
            .filter(Q(name__icontains=term) | Q(email__icontains=term))
        )
        users = suggestions(matching, lambda user: (user.name.lower(), user.pk))
    return render(request, "accounts/user_picker.html", {"users": users})
