"""Console sessions end after a while idle and after a fixed time in all, and an HTMX request
that finds itself signed out sends the whole page to sign-in instead of swapping a sign-in
form into whatever element asked.

Only sessions signed in through the console backend are limited; the portal's sessions have
their own rules (accounts.portal_sessions). At the same once-a-minute rhythm as the idle clock,
the session's SignedInSession row is told it was seen; a session whose row is gone was ended
from another browser or by an admin, and is signed out."""

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import BACKEND_SESSION_KEY, logout, user_logged_in
from django.contrib.auth.views import redirect_to_login
from django.dispatch import receiver
from django.shortcuts import redirect, resolve_url
from django.utils import timezone
from django_htmx.http import HttpResponseClientRedirect

from accounts import sign_in_audit, signed_in_sessions
from accounts.models import SignedInSession
from accounts.permissions import CONSOLE_BACKEND

SIGNED_IN_AT = "console_signed_in_at"
LAST_SEEN_AT = "console_last_seen_at"
EXPIRED_MESSAGE = "Your session expired, please sign in again."
ENDED_MESSAGE = "This session was ended from another browser or by an admin. Sign in again."
# Writing the session on every request would cost a database write per click; the idle limit
# tolerates being a minute late.
LAST_SEEN_PRECISION_SECONDS = 60


def _now():
    return timezone.now().timestamp()


def _is_console_session(request):
    return request.session.get(BACKEND_SESSION_KEY) == CONSOLE_BACKEND


def _stamp(session, now):
    session[SIGNED_IN_AT] = now
    session[LAST_SEEN_AT] = now


@receiver(user_logged_in)
def _start_console_session(sender, request, user, **kwargs):
    if getattr(user, "backend", None) == CONSOLE_BACKEND:
        _stamp(request.session, _now())


def _expired(session, now):
    idle = settings.CONSOLE_IDLE_TIMEOUT_MINUTES * 60
    total = settings.CONSOLE_MAX_SESSION_HOURS * 60 * 60
    return now - session[LAST_SEEN_AT] > idle or now - session[SIGNED_IN_AT] > total


def _row_seen(request):
    """Tell the session's row it was seen; False when the row is gone (the session was ended)."""
    if not request.user.is_authenticated:
        return True  # nothing to keep track of: the auth middleware found nobody
    return signed_in_sessions.seen(
        request.session,
        request.user,
        door=SignedInSession.Door.CONSOLE,
        ip=sign_in_audit.ip_of(request),
        user_agent=sign_in_audit.user_agent(request),
        now=timezone.now(),
    )


def _page_to_return_to(request):
    """The page the person was on: for HTMX, the page that sent the request (its URL may be a
    fragment or a POST-only action); for a plain POST, nothing worth coming back to."""
    if request.htmx:
        return request.htmx.current_url_abs_path
    return request.get_full_path() if request.method == "GET" else None


def _to_sign_in(request):
    next_page = _page_to_return_to(request)
    url = redirect_to_login(next_page).url if next_page else resolve_url(settings.LOGIN_URL)
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _is_sign_in_redirect(response):
    if response.status_code != 302:
        return False
    return urlsplit(response["Location"]).path == resolve_url(settings.LOGIN_URL)


class ConsoleSessionMiddleware:
    """Goes after the session, auth, messages and htmx middleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if _is_console_session(request):
            now = _now()
            session = request.session
            if SIGNED_IN_AT not in session or LAST_SEEN_AT not in session:
                _stamp(session, now)
                ended = not _row_seen(request)
            elif _expired(session, now):
                request.sign_out_reason = "session expired"
                logout(request)
                messages.info(request, EXPIRED_MESSAGE)
                return _to_sign_in(request)
            elif now - session[LAST_SEEN_AT] >= LAST_SEEN_PRECISION_SECONDS:
                session[LAST_SEEN_AT] = now
                ended = not _row_seen(request)
            else:
                ended = False
            if ended:
                request.sign_out_reason = "session had been ended"
                logout(request)
                messages.info(request, ENDED_MESSAGE)
                return _to_sign_in(request)

        response = self.get_response(request)

        # login_required answers with a 302, which htmx follows and swaps the sign-in page in.
        if request.htmx and _is_sign_in_redirect(response):
            return _to_sign_in(request)
        return response
