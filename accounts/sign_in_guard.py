"""The one sign-in throttle every door shares: the console's sign-in page, the Django admin's
login (/support/login/), and the portal's password and one-time-code sign-ins. It is called
where the secret is checked (the authentication backends, the portal's code check), so a new
door that authenticates gets it without remembering to.

Failures are counted per identity (a console email; a portal account + email) and per client
IP. After SIGN_IN_MAX_FAILURES failures for an identity, the next attempt waits
SIGN_IN_LOCKOUT_SECONDS, and every further failure doubles the wait (at most
SIGN_IN_LOCKOUT_MAX_SECONDS): the right password works again as soon as the wait is over, so
nobody can lock an admin out for long. The per-IP limit (SIGN_IN_MAX_FAILURES_PER_IP) is far
higher: a whole office behind one NAT shares it, and it only stops one address guessing many
identities. Counters live in Django's cache (Redis in production), shared by every process; a
deployment check refuses production settings whose cache is not shared."""

import math

from django.conf import settings
from django.core.exceptions import PermissionDenied

from helpers import attempt_counter


class LockedOut(PermissionDenied):
    """Raised instead of checking a secret while the identity or the IP waits. A
    PermissionDenied, so that django.contrib.auth.authenticate() stops at once and tries no
    other backend."""

    def __init__(self, wait_seconds):
        super().__init__(wait_message(wait_seconds))
        self.wait_seconds = wait_seconds


def wait_message(seconds):
    minutes = max(math.ceil(seconds / 60), 1)
    wait = "1 minute" if minutes == 1 else f"{minutes} minutes"
    return f"Too many failed sign-in attempts. Wait {wait} and try again."


def console_identity(email):
    return f"sign-in:console:{attempt_counter.email_digest(email)}"


def portal_identity(account, email):
    return f"sign-in:portal:{account.pk}:{attempt_counter.email_digest(email)}"


def _ip_key(ip):
    return f"sign-in:ip:{ip}"


def check(identity, ip):
    """Raise LockedOut while the identity or the IP must wait; record it on nothing."""
    keys = [identity] + ([_ip_key(ip)] if ip else [])
    wait = attempt_counter.wait_seconds(keys)
    if wait > 0:
        raise LockedOut(wait)


def failed(identity, ip):
    """A wrong secret for `identity` from `ip`. Returns the wait it now faces (0: none yet)."""
    lock = {
        "first_delay": settings.SIGN_IN_LOCKOUT_SECONDS,
        "max_delay": settings.SIGN_IN_LOCKOUT_MAX_SECONDS,
        "window_seconds": settings.SIGN_IN_FAILURE_WINDOW_MINUTES * 60,
    }
    wait = attempt_counter.fail(identity, settings.SIGN_IN_MAX_FAILURES, **lock)
    if ip:
        per_ip = settings.SIGN_IN_MAX_FAILURES_PER_IP
        wait = max(wait, attempt_counter.fail(_ip_key(ip), per_ip, **lock))
    return wait


def succeeded(identity):
    """The right secret: the identity's earlier mistakes are forgotten (not the IP's)."""
    attempt_counter.clear([identity])
