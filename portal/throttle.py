"""Portal brute-force limits. Two kinds of counted events, each counted per (portal account +
email) and per IP address within a window (PORTAL_THROTTLE_WINDOW_MINUTES):

- failures: a wrong password or a wrong one-time code (guessing a credential);
- requests: asking for a sign-in link, a code or a password reset (each one sends an email).

A refused request is answered with 429 before anything is checked or sent. Counters live in
Django's cache (Redis in production) so every web process sees the same counts. The per-email
count does not care whether the address exists, so a refusal reveals nothing about accounts.

The same cache also holds a decoy code for addresses that were sent no code (see decoy_*)."""

from django.conf import settings
from django.core.cache import cache

from helpers import attempt_counter

FAILURES = "failures"
REQUESTS = "requests"


def _limit(kind):
    if kind == FAILURES:
        return settings.PORTAL_SIGN_IN_MAX_FAILURES
    return settings.PORTAL_LINK_REQUESTS_MAX


def _window_seconds():
    return settings.PORTAL_THROTTLE_WINDOW_MINUTES * 60


def refusal_message():
    return (
        f"Too many attempts. Wait {settings.PORTAL_THROTTLE_WINDOW_MINUTES} minutes and try again."
    )


def _keys(kind, account, email, ip):
    keys = []
    if (email or "").strip():
        keys.append(f"portal-{kind}:account:{account.pk}:{attempt_counter.email_digest(email)}")
    if ip:
        # Not per account: one address spraying many portals is still one address.
        keys.append(f"portal-{kind}:ip:{ip}")
    return keys


def is_refused(kind, account, email, ip):
    return attempt_counter.over_limit(_keys(kind, account, email, ip), _limit(kind))


def record(kind, account, email, ip):
    attempt_counter.count(_keys(kind, account, email, ip), _limit(kind), _window_seconds())


def clear_failures(account, email):
    """A successful sign-in forgets that address's earlier mistakes (not the IP's)."""
    attempt_counter.forget(_keys(FAILURES, account, email, None))


# --- Decoy codes ---
# Someone who asks for a code for an address that gets none (unknown, disabled, unconfirmed)
# must not learn that from the code page: a real code answers "not right" to a wrong guess until
# its attempts run out or it expires, then "expired". A decoy in the cache answers the same way.


def _decoy_key(account, email):
    return f"portal-code-decoy:{account.pk}:{attempt_counter.email_digest(email)}"


def start_decoy(account, email):
    lifetime = int(settings.TOKEN_LIFETIMES["login_code"].total_seconds())
    cache.set(_decoy_key(account, email), 0, timeout=lifetime)


def decoy_guess(account, email):
    """True while the decoy 'code' is live (a guess is merely wrong), False once it is spent."""
    key = _decoy_key(account, email)
    try:
        attempts = cache.incr(key)
    except ValueError:  # no decoy: never asked, or it expired
        return False
    if attempts >= settings.LOGIN_CODE_MAX_ATTEMPTS:
        cache.delete(key)  # the real code is revoked on its last failed attempt
    return True
