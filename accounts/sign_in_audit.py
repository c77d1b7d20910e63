"""Every sign-in, refused sign-in, lockout and sign-out at every door (the console, the support
admin's login, the portal) is an audit event with its time, IP, user agent, door and method,
and every sign-in starts a SignedInSession row (every sign-out ends it).

Django's auth signals carry what they can: user_logged_in (every door, every method),
user_logged_out, and user_login_failed (the console and the support admin, whose forms go
through django.contrib.auth.authenticate(); a lockout there arrives as a failure with the
LockedOut left on the request by accounts.backends). The portal calls its backend and checks
its codes itself, so portal/views.py and PortalBackend call refused() directly.

These run on every attempt, so each event is one INSERT. The typed email is recorded only when
it looks like an address (people type passwords into the email field); never a password, code
or token."""

import ipaddress
from datetime import timedelta

from django.contrib.auth import BACKEND_SESSION_KEY
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.db.models import Count, Q
from django.dispatch import receiver
from django.utils import timezone

from accounts import audit, signed_in_sessions
from accounts.models import AuditEvent, SignedInSession, User
from helpers.client_ip import client_ip

SIGN_IN = "sign_in"
SIGN_IN_FAILED = "sign_in_failed"
LOCKED_OUT = "sign_in_locked_out"
SIGN_OUT = "sign_out"
REFUSED_ACTIONS = (SIGN_IN_FAILED, LOCKED_OUT)
# The audit log's "Sign-ins" filter: these, the second factor's events and ended sessions.
SIGN_IN_ACTIONS = (
    SIGN_IN,
    SIGN_IN_FAILED,
    LOCKED_OUT,
    SIGN_OUT,
    signed_in_sessions.END_SESSIONS,
    "two_factor_verified",
    "two_factor_failed",
)

CONSOLE, SUPPORT_ADMIN, PORTAL = "console", "support_admin", "portal"
DOORS = {CONSOLE: "Console", SUPPORT_ADMIN: "Support admin", PORTAL: "Portal"}
PASSWORD, LINK, MAGIC_LINK, CODE = "password", "link", "magic_link", "code"
ACTIVATION, RESET = "activation_link", "reset_link"
METHODS = {
    PASSWORD: "password",
    LINK: "emailed sign-in link",
    MAGIC_LINK: "magic link",
    CODE: "one-time code",
    ACTIVATION: "invitation link",
    RESET: "password reset link",
}
# How a portal sign-in came about, by the URL that signed the browser in.
_PORTAL_METHODS = {
    "portal-login": PASSWORD,
    "portal-code": CODE,
    "portal-link": LINK,
    "portal-magic-link": MAGIC_LINK,
    "portal-activate": ACTIVATION,
    "portal-reset": RESET,
}
# Kept in the session so that the sign-out names the door the session came through.
_DOOR_KEY = "signed_in_door"
ANONYMOUS = "anonymous"
UNREADABLE_EMAIL = "(not an email address)"
LABEL_LENGTH = 254
USER_AGENT_LENGTH = 300
PORTAL_BACKEND = "accounts.backends.PortalBackend"
_NOT_LOOKED_UP = object()


def _printable(text):
    # PostgreSQL refuses NUL in text, and a control character has no business in a log.
    return "".join(char for char in text if char.isprintable())


def user_agent(request):
    return _printable(request.META.get("HTTP_USER_AGENT", ""))[:USER_AGENT_LENGTH]


def ip_of(request):
    """The client's address, or None where a proxy passed something that is not one (the
    column is an inet on PostgreSQL: a bad value would fail the sign-in)."""
    ip = client_ip(request)
    try:
        return str(ipaddress.ip_address(ip)) if ip else None
    except ValueError:
        return None


def typed_email(email):
    email = (email or "").strip().lower()
    if not email:
        return ""
    if "@" not in email or not email.isprintable() or " " in email:
        return UNREADABLE_EMAIL
    return email[:LABEL_LENGTH]


def _is_support_admin(request):
    match = getattr(request, "resolver_match", None)
    return match is not None and match.namespace == "admin"


def session_door(request, backend):
    if backend == PORTAL_BACKEND:
        return PORTAL
    return SUPPORT_ADMIN if _is_support_admin(request) else CONSOLE


def _event(action, request, *, door, method="", user=None, label="", account_id=None, detail=""):
    success = action in (SIGN_IN, SIGN_OUT)
    return AuditEvent(
        action=action,
        actor=user if success else None,
        actor_label=str(user)[:LABEL_LENGTH] if success else ANONYMOUS,
        portal_account_id=account_id if user is None else user.portal_account_id,
        subject_user=user,
        subject_label=str(user)[:LABEL_LENGTH] if user is not None else label,
        after={"door": door, **({"method": method} if method else {})},
        ip_address=ip_of(request) if request is not None else None,
        user_agent=user_agent(request) if request is not None else "",
        outcome=AuditEvent.Outcome.SUCCESS if success else AuditEvent.Outcome.REFUSED,
        detail=detail,
    )


def _write(events):
    AuditEvent.objects.bulk_create(events)  # one INSERT, however many
    audit.announce(
        [
            audit.Recorded(e.action, e.portal_account_id, e.subject_user_id, e.before, e.after)
            for e in events
            if e.outcome == AuditEvent.Outcome.SUCCESS
        ]
    )


def refused(
    request,
    *,
    door,
    method,
    email,
    portal_account=None,
    user=_NOT_LOOKED_UP,
    locked_out=None,
    reason="",
):
    """A refused sign-in (or, with `locked_out`, one refused without checking the secret), and
    `reason` in plain words. `user`: the person the attempt was for (None: nobody), when the
    caller has looked them up; else the portal's attempt is looked up by account + email. The
    event is the account's either way, so its admins see attempts on their portal."""
    if user is _NOT_LOOKED_UP:
        user = _portal_person(portal_account, email) if portal_account is not None else None
    if locked_out is not None:
        detail = str(locked_out)
    else:
        detail = reason if user is not None else "no user with this email"
    _write(
        [
            _event(
                LOCKED_OUT if locked_out is not None else SIGN_IN_FAILED,
                request,
                door=door,
                method=method,
                user=user,
                label=typed_email(email),
                account_id=portal_account.pk if portal_account is not None else None,
                detail=detail,
            )
        ]
    )


def _portal_person(portal_account, email):
    email = typed_email(email)
    if not email or email == UNREADABLE_EMAIL:
        return None
    return User.objects.filter(portal_account=portal_account, email=email).first()


def _console_people(email):
    """Who a console attempt was for: an address may hold several admin seats."""
    if not email or email == UNREADABLE_EMAIL:
        return []
    return list(
        User.objects.filter(
            Q(portal_account__isnull=True) | Q(is_account_admin=True), email=email
        ).select_related("contact")
    )


def _console_refusal(user):
    if user.can_use_console():
        return "wrong password"
    return "may not use the console now (disabled, not activated or contact deleted)"


@receiver(user_login_failed, dispatch_uid="sign_in_audit.failed")
def _console_refused(sender, credentials, request=None, **kwargs):
    if "portal_account" in credentials:
        return  # the portal backend records its own
    door = SUPPORT_ADMIN if _is_support_admin(request) else CONSOLE
    email = typed_email(credentials.get("username") or credentials.get("email"))
    locked_out = getattr(request, "sign_in_locked_out", None)
    action = LOCKED_OUT if locked_out is not None else SIGN_IN_FAILED
    people = _console_people(email)

    def detail(user):
        if locked_out is not None:
            return str(locked_out)
        return _console_refusal(user) if user else "no console user with this email"

    _write(
        [
            _event(
                action,
                request,
                door=door,
                method=PASSWORD,
                user=user,
                label=email,
                detail=detail(user),
            )
            for user in people or [None]
        ]
    )


@receiver(user_logged_in, dispatch_uid="sign_in_audit.signed_in")
def _signed_in(sender, request, user, **kwargs):
    if request is None or not hasattr(request, "session"):
        return
    backend = request.session.get(BACKEND_SESSION_KEY)
    door = session_door(request, backend)
    session = request.session
    if session.session_key is None:
        session.save()  # login() flushed it: the key exists once it is saved
    with transaction.atomic():
        signed_in_sessions.start(
            session,
            user,
            door=SignedInSession.Door.PORTAL if door == PORTAL else SignedInSession.Door.CONSOLE,
            ip=ip_of(request),
            user_agent=user_agent(request),
        )
        session[_DOOR_KEY] = door
        # A sign-in at one of the site's doors comes through a URL; a login outside any routed
        # request (the test client's force_login, a shell) came through no door.
        match = getattr(request, "resolver_match", None)
        if match is not None:
            method = _PORTAL_METHODS.get(match.url_name, "") if door == PORTAL else PASSWORD
            _write([_event(SIGN_IN, request, door=door, method=method, user=user)])


@receiver(user_logged_out, dispatch_uid="sign_in_audit.signed_out")
def _signed_out(sender, request, user, **kwargs):
    if request is None or user is None or not hasattr(request, "session"):
        return
    session = request.session
    door = session.get(_DOOR_KEY) or session_door(request, session.get(BACKEND_SESSION_KEY))
    reason = getattr(request, "sign_out_reason", "")
    with transaction.atomic():
        signed_in_sessions.forget(session)
        _write([_event(SIGN_OUT, request, door=door, user=user, detail=reason)])


def refused_counts(events, now=None):
    """Refused sign-ins and lockouts among `events` (one account's, already scoped) in the last
    24 hours and 7 days, in one query that reads only that week, on the (portal_account,
    action, created_at) index."""
    now = now or timezone.now()
    day, week = now - timedelta(days=1), now - timedelta(days=7)
    counts = (
        events.filter(action__in=REFUSED_ACTIONS, created_at__gte=week)
        .order_by()
        .aggregate(
            failed_day=Count("pk", filter=Q(action=SIGN_IN_FAILED, created_at__gte=day)),
            failed_week=Count("pk", filter=Q(action=SIGN_IN_FAILED)),
            locked_day=Count("pk", filter=Q(action=LOCKED_OUT, created_at__gte=day)),
            locked_week=Count("pk", filter=Q(action=LOCKED_OUT)),
        )
    )
    return counts


def describe(event):
    """ "Portal, one-time code" for a sign-in event's door and method."""
    door = DOORS.get(event.after.get("door"), "")
    method = METHODS.get(event.after.get("method"), "")
    return ", ".join(part for part in (door, method) if part)
