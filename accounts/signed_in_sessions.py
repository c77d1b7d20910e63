"""Signed-in sessions that people can see and end: a SignedInSession row for every browser
signed in at the console or the portal, beside the session itself in Django's session store.

Ending a session deletes it from the store (the browser is signed out at its next request) and
deletes the row. The row's id is kept inside the session, so the row follows the session when
Django gives it a new key, and a session whose row is gone has been ended (the middlewares sign
it out). Plain domain code: lifecycle.disable and .delete call end_all() inside their own
transaction."""

from datetime import timedelta
from importlib import import_module

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts import audit
from accounts.models import SignedInSession

# Kept in the session: which row describes it.
ROW_KEY = "signed_in_session"
END_SESSIONS = "end_sessions"
# last_seen_at moves at most once a minute, so a row may lag that much behind the session's own
# idle clock; a row older than the idle limit plus this is a session that has ended.
SEEN_MARGIN = timedelta(minutes=2)


def idle_limit(door):
    minutes = (
        settings.CONSOLE_IDLE_TIMEOUT_MINUTES
        if door == SignedInSession.Door.CONSOLE
        else settings.PORTAL_IDLE_TIMEOUT_MINUTES
    )
    return timedelta(minutes=minutes)


def _ended_by_idleness(now):
    return Q(
        door=SignedInSession.Door.CONSOLE,
        last_seen_at__lt=now - idle_limit(SignedInSession.Door.CONSOLE) - SEEN_MARGIN,
    ) | Q(
        door=SignedInSession.Door.PORTAL,
        last_seen_at__lt=now - idle_limit(SignedInSession.Door.PORTAL) - SEEN_MARGIN,
    )


def open_sessions(user, now=None):
    """The user's sessions that may still be in use (rows of sessions that idled out are
    left until the user's next sign-in clears them)."""
    now = now or timezone.now()
    return user.signed_in_sessions.exclude(_ended_by_idleness(now))


def start(session, user, *, door, ip, user_agent):
    """A browser has just signed in as `user`: its row (a session signed in again keeps its
    key, and so its row). Clears the user's rows of sessions that idled out meanwhile."""
    now = timezone.now()
    user.signed_in_sessions.filter(_ended_by_idleness(now)).delete()
    row, _ = SignedInSession.objects.update_or_create(
        session_key=session.session_key,
        defaults={
            "user": user,
            "door": door,
            "ip_address": ip,
            "user_agent": user_agent,
            "last_seen_at": now,
        },
    )
    session[ROW_KEY] = row.pk
    return row


def seen(session, user, *, door, ip, user_agent, now):
    """The session is in use (called at most once a minute). False when its row is gone: the
    session was ended from elsewhere and must not go on. A session signed in before rows were
    kept gets one now."""
    row_id = session.get(ROW_KEY)
    if row_id is None:
        start(session, user, door=door, ip=ip, user_agent=user_agent)
        return True
    rows = SignedInSession.objects.filter(pk=row_id, user=user)
    return rows.update(last_seen_at=now, session_key=session.session_key) > 0


def forget(session):
    """The browser signed out: Django flushes the session itself; the row goes."""
    row_id = session.get(ROW_KEY)
    if row_id is not None:
        SignedInSession.objects.filter(pk=row_id).delete()


def _session_store():
    return import_module(settings.SESSION_ENGINE).SessionStore


def _is_open(row, now):
    return row.last_seen_at >= now - idle_limit(row.door) - SEEN_MARGIN


def _end(rows):
    """Sign each row's browser out and delete the rows. Returns how many of them were open
    (the rest had idled out already, and were ended all the same)."""
    rows, now = list(rows), timezone.now()
    store = _session_store()
    for row in rows:
        store(session_key=row.session_key).delete()
    SignedInSession.objects.filter(pk__in=[row.pk for row in rows]).delete()
    return sum(1 for row in rows if _is_open(row, now))


def end_all(user):
    """Every session of the user, in the caller's transaction (disable, delete)."""
    return _end(user.signed_in_sessions.all())


def end_portal_sessions(user):
    return _end(user.signed_in_sessions.filter(door=SignedInSession.Door.PORTAL))


def _where(row):
    return {
        "door": row.door,
        "device": describe_device(row.user_agent),
        "ip": row.ip_address,
    }


@transaction.atomic
def end_one(person, row, *, ip=None):
    """A person ends one of their own sessions (another browser)."""
    where = _where(row)
    _end([row])
    audit.record(
        END_SESSIONS,
        by=person,
        subject=person,
        portal_account=person.portal_account,
        ip=ip,
        after={"sessions_ended": 1, **where},
        detail="one of their own sessions",
    )


@transaction.atomic
def end_others(person, keep_row_id, *, ip=None):
    """A person ends all their sessions but the one they are using. Returns how many."""
    ended = _end(person.signed_in_sessions.exclude(pk=keep_row_id).select_for_update())
    audit.record(
        END_SESSIONS,
        by=person,
        subject=person,
        portal_account=person.portal_account,
        ip=ip,
        after={"sessions_ended": ended},
        detail="all their other sessions",
    )
    return ended


@transaction.atomic
def end_for_user(user, *, by, ip=None):
    """An admin signs a user out everywhere. Returns how many sessions were open."""
    ended = _end(user.signed_in_sessions.select_for_update())
    audit.record(
        END_SESSIONS,
        by=by,
        subject=user,
        portal_account=user.portal_account,
        ip=ip,
        after={"sessions_ended": ended},
    )
    return ended


# --- What the sessions page calls a device ---

_BROWSERS = [
    # Order matters: Edge and Opera also say Chrome, Chrome also says Safari.
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("EdgiOS/", "Edge"),
    ("OPR/", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chrome/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
    ("python-requests/", "Python requests"),
]
_SYSTEMS = [
    # Order matters: Android says Linux, iPhones say "like Mac OS X".
    ("Windows", "Windows"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("CrOS", "ChromeOS"),
    ("Macintosh", "Mac"),
    ("Mac OS X", "Mac"),
    ("Linux", "Linux"),
]


def describe_device(user_agent):
    """ "Chrome on Windows" from a browser's user agent, in words a person recognises; a guess
    from a few well-known markers, never used for anything but display."""
    browser = next((name for marker, name in _BROWSERS if marker in user_agent), None)
    system = next((name for marker, name in _SYSTEMS if marker in user_agent), None)
    if browser and system:
        return f"{browser} on {system}"
    if browser:
        return browser
    if system:
        return f"A browser on {system}"
    return "Unknown browser" if user_agent else "Unknown device"
