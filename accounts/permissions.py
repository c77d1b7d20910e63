"""Who may do what in the console. Views check with these; the scoping module decides what
they may see at all."""

import re
from functools import wraps
from urllib.parse import urlencode, urlsplit

from django.contrib.auth import BACKEND_SESSION_KEY
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

from accounts import actors, two_factor
from accounts.models import UserKind

CONSOLE_BACKEND = "accounts.backends.ConsoleBackend"
TWO_FACTOR_PAGES = {"verify": "two-factor-verify", "set_up": "two-factor-set-up"}


def password_checked_view(view):
    """Signed in at the console with a password, whatever the second factor says: the pages
    that ask for the code or set the app up."""

    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        # A portal sign-in is not a console sign-in: the console's throttling and session
        # limits apply only to sessions that began at the console's sign-in page.
        if request.session.get(BACKEND_SESSION_KEY) != CONSOLE_BACKEND:
            return redirect_to_login(request.get_full_path())
        if not request.user.can_use_console():
            raise PermissionDenied("The console is for MSSP staff and portal-account admins.")
        return view(request, *args, **kwargs)

    return wrapped


def console_view(view):
    """Signed in, allowed into the console (MSSP staff or a portal account's admin), and past
    the second factor where the person has one or must have one."""

    @password_checked_view
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        needed = two_factor.what_the_session_needs(request)
        if needed is not None:
            return _to_two_factor(request, TWO_FACTOR_PAGES[needed])
        return view(request, *args, **kwargs)

    return wrapped


STEP_UP_DRAFT = "step_up_draft"
_SECRET_FIELD = re.compile(r"csrf|password|secret|token|code", re.IGNORECASE)
_DRAFT_VALUE_MAX = 1000


def step_up(request):
    """Before the most dangerous actions (an API token, a new account admin, a magic link for
    somebody else): None when the person entered a code in the last few minutes, else the
    response that asks for one (or to set up a second factor, whoever the person is)."""
    if not two_factor.is_on(request.user):
        return _to_two_factor(request, "two-factor-set-up", step_up=True)
    if not two_factor.fresh_enough(request):
        return _to_two_factor(request, "two-factor-verify", step_up=True)
    return None


def step_up_draft(request):
    """What the person had filled in on this page when a fresh code was asked for ({} if
    nothing): given once, to fill the form again."""
    draft = request.session.get(STEP_UP_DRAFT)
    if not draft or draft.get("path") != request.path:
        return {}
    del request.session[STEP_UP_DRAFT]
    return draft["data"]


def fresh_code_view(view):
    """A view that is a dangerous action as a whole (see step_up)."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        return step_up(request) or view(request, *args, **kwargs)

    return wrapped


def _to_two_factor(request, page, *, step_up=False):
    # Back to the page the person was on: an HTMX request or a POST is no page to come back to.
    if request.htmx:
        back = request.htmx.current_url_abs_path
    elif request.method == "GET":
        back = request.get_full_path()
    else:
        back = request.META.get("HTTP_REFERER", "")
    if request.method == "POST" and back:
        # What the person filled in comes back on that page after the code (step_up_draft).
        # Never a secret, and nothing long: it is kept in the session.
        request.session[STEP_UP_DRAFT] = {
            "path": urlsplit(back).path,
            "data": {
                key: value[:_DRAFT_VALUE_MAX]
                for key, value in request.POST.items()
                if not _SECRET_FIELD.search(key)
            },
        }
    query = {"next": back} if back else {}
    if step_up:
        query["step_up"] = "1"
    url = reverse(page) + ("?" + urlencode(query) if query else "")
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def is_mssp_admin(person):
    return person.kind == UserKind.MSSP_ADMIN


def mssp_admin_view(view):
    """Portal accounts, licenses and roles: MSSP admins only."""

    @console_view
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not is_mssp_admin(request.user):
            raise PermissionDenied(
                "Only MSSP admins can change portal accounts, licenses and roles."
            )
        return view(request, *args, **kwargs)

    return wrapped


def mssp_view(view):
    @console_view
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_mssp:
            raise PermissionDenied("Only MSSP staff can see this page.")
        return view(request, *args, **kwargs)

    return wrapped


def may_act_on(person, target):
    """Every user action is open to console people within their scope, except that a
    portal-account admin never acts on their own admin seat. A registered actor (an API token:
    MSSP admins issue them) acts on every user of its own account, as MSSP staff do; scoping
    keeps it there."""
    return actors.is_account_actor(person) or person.is_mssp or not target.is_account_admin


def check_may_act_on(person, target):
    if not may_act_on(person, target):
        raise PermissionDenied("You cannot change your own account admin seat. Ask your MSSP.")


def may_move_admin_seat(person):
    return person.is_mssp
