"""The one sign-in throttle every door shares: the console's sign-in page, the Django admin's
login (/support/login/), and the portal's password and one-time-code sign-ins. It is called
where the secret is checked (the authentication backends, the portal's code check), so a new
door that authenticates gets it without remembering to.

Failures are counted per identity (a console email; a portal account + email, which also
counts on that email's console counter) and per client IP. After SIGN_IN_MAX_FAILURES failures
for an identity, the next attempt waits SIGN_IN_LOCKOUT_SECONDS, and every further failure
doubles the wait (at most SIGN_IN_LOCKOUT_MAX_SECONDS): the right password works again as soon
as the wait is over, so nobody can lock an admin out for long. The per-IP limit
(SIGN_IN_MAX_FAILURES_PER_IP) is far higher: a whole office behind one NAT shares it, and it
only stops one address guessing many identities. Counters live in Django's cache (Redis in
production), shared by every process; a deployment check refuses production settings whose
cache is not shared."""

import math

from django.conf import settings
from django.core.exceptions import PermissionDenied

from accounts.models import User
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
    """The counter of a console sign-in (and of its second factor): the email's."""
    return f"sign-in:console:{attempt_counter.email_digest(email)}"


def portal_identity(account, email):
    """The counters of a portal sign-in: the account's email, and the email's console counter.
    An account's admin has one password for the console and the portal, and one count for both
    doors, not five guesses at each; a person whose email is a user of several portal accounts
    has one count for all of them. Every portal email counts on its console counter, admin or
    not, known or not, so a lock tells nobody who has which login. A right secret at the portal
    clears the console's count only when the console has nobody else of that email
    (`succeeded_on_portal`)."""
    return (
        f"sign-in:portal:{account.pk}:{attempt_counter.email_digest(email)}",
        console_identity(email),
    )


def _keys(identity):
    """An identity is its own counter's key, or a tuple of it and the counters it shares."""
    return (identity,) if isinstance(identity, str) else tuple(identity)


def _ip_key(ip):
    return f"sign-in:ip:{ip}"


def _lock_settings():
    return {
        "first_delay": settings.SIGN_IN_LOCKOUT_SECONDS,
        "max_delay": settings.SIGN_IN_LOCKOUT_MAX_SECONDS,
        "window_seconds": settings.SIGN_IN_FAILURE_WINDOW_MINUTES * 60,
    }


def check(identity, ip):
    """Before a secret is checked: raise LockedOut while the identity or the IP must wait, else
    count this attempt as a failure until `succeeded` says otherwise. Counted first, so that
    guesses sent in parallel (as many as the servers take at once) cannot all be checked before
    the first of them fails: past the limit they are refused unchecked."""
    counters = _counters(identity, ip)
    wait = attempt_counter.wait_seconds([key for key, _limit in counters])
    if wait > 0:
        raise LockedOut(wait)
    window = _lock_settings()["window_seconds"]
    waits = {key: attempt_counter.take_attempt(key, limit, window) for key, limit in counters}
    if any(waits.values()):
        # Refused unchecked: the counters that took the attempt give it back too.
        for key, wait in waits.items():
            if not wait:
                attempt_counter.give_back(key)
        raise LockedOut(max(waits.values()))


def failed(identity, ip):
    """The secret `check` let through was wrong. Returns the wait it now faces (0: none yet)."""
    lock = _lock_settings()
    return max(
        attempt_counter.lock_if_due(key, limit, **lock) for key, limit in _counters(identity, ip)
    )


def _counters(identity, ip):
    """(key, limit) of every counter an attempt counts on: the identity's, and the IP's (whose
    limit is far higher)."""
    counters = [(key, settings.SIGN_IN_MAX_FAILURES) for key in _keys(identity)]
    if ip:
        counters.append((_ip_key(ip), settings.SIGN_IN_MAX_FAILURES_PER_IP))
    return counters


def succeeded(identity, ip, *, clear_shared=True):
    """The right secret: the identity's earlier mistakes are forgotten (with `clear_shared`
    False, only its own counter's: the shared ones take back this attempt and keep the rest),
    and the IP's count takes back the attempt `check` counted (the IP's earlier mistakes
    stay)."""
    own, *shared = _keys(identity)
    attempt_counter.clear([own, *(shared if clear_shared else [])])
    for key in [] if clear_shared else shared:
        attempt_counter.give_back(key)
    if ip:
        attempt_counter.give_back(_ip_key(ip))


def succeeded_on_portal(identity, ip, user):
    """`succeeded` for a portal sign-in of `user`. The console's count of the email is cleared
    only if nobody else signs in to the console with it: the right password of a portal user
    an attacker owns must not wipe the guesses made at an MSSP admin's or another account
    admin's console password of the same email."""
    others = User.objects.console_candidates(user.email).exclude(pk=user.pk)
    succeeded(identity, ip, clear_shared=not others.exists())


def not_checked(identity, ip):
    """`check` counted an attempt whose secret was not checked after all (not a guess)."""
    for key in _keys(identity):
        attempt_counter.give_back(key)
    if ip:
        attempt_counter.give_back(_ip_key(ip))
