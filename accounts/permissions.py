"""Who may do what in the console. Views check with these; the scoping module decides what
they may see at all."""

from functools import wraps

from django.contrib.auth import BACKEND_SESSION_KEY
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

from accounts import actors
from accounts.models import UserKind

CONSOLE_BACKEND = "accounts.backends.ConsoleBackend"


def console_view(view):
    """Signed in, and allowed into the console (MSSP staff or a portal account's admin)."""

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
