"""Portal sessions end after PORTAL_IDLE_TIMEOUT_MINUTES without a request, like the console's
(accounts.console_sessions), and end at once when their SignedInSession row is gone (ended by
an admin, by the person from another browser, or by a change to the user). The browser is sent
to its portal's sign-in page with a message saying why.

Only sessions signed in through the portal backend are concerned; the clock lives in the
session, written at most once a minute."""

from django.contrib import messages
from django.contrib.auth import BACKEND_SESSION_KEY, logout, user_logged_in
from django.dispatch import receiver
from django.shortcuts import redirect
from django.utils import timezone

from accounts import sign_in_audit, signed_in_sessions
from accounts.models import SignedInSession

LAST_SEEN_AT = "portal_last_seen_at"
EXPIRED_MESSAGE = "You were signed out after a while without activity. Please sign in again."
ENDED_MESSAGE = "You were signed out. Please sign in again."
# As at the console: the idle limit may be a minute late, and a click costs no session write.
LAST_SEEN_PRECISION_SECONDS = 60


def _is_portal_session(request):
    return request.session.get(BACKEND_SESSION_KEY) == sign_in_audit.PORTAL_BACKEND


@receiver(user_logged_in, dispatch_uid="portal_sessions.start")
def _start_portal_session(sender, request, user, **kwargs):
    # The portal calls its backend itself, so the user carries no .backend: ask the session.
    if request is not None and _is_portal_session(request):
        request.session[LAST_SEEN_AT] = timezone.now().timestamp()


def _sign_out(request, reason, message):
    user = request.user
    slug = user.portal_account.slug if user.is_authenticated and user.portal_account_id else None
    request.sign_out_reason = reason
    logout(request)
    if slug is None:
        return None  # nowhere to send them: the page they asked for decides
    messages.info(request, message)
    return redirect("portal-login", slug=slug)


class PortalSessionMiddleware:
    """Goes after the session, auth and messages middleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if _is_portal_session(request):
            refused = self._check(request)
            if refused is not None:
                return refused
        return self.get_response(request)

    def _check(self, request):
        session, now = request.session, timezone.now()
        last_seen = session.get(LAST_SEEN_AT)
        idle = signed_in_sessions.idle_limit(SignedInSession.Door.PORTAL).total_seconds()
        if last_seen is not None and now.timestamp() - last_seen > idle:
            return _sign_out(request, "session expired", EXPIRED_MESSAGE)
        if last_seen is not None and now.timestamp() - last_seen < LAST_SEEN_PRECISION_SECONDS:
            return None
        session[LAST_SEEN_AT] = now.timestamp()
        if request.user.is_authenticated and not signed_in_sessions.seen(
            session,
            request.user,
            door=SignedInSession.Door.PORTAL,
            ip=sign_in_audit.ip_of(request),
            user_agent=sign_in_audit.user_agent(request),
            now=now,
        ):
            return _sign_out(request, "session had been ended", ENDED_MESSAGE)
        return None
