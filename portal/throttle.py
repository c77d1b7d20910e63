"""How often the portal sends email on request: asking for a sign-in link, a code or a
password reset sends an email, so each is counted per (portal account + email) and per IP within
PORTAL_THROTTLE_WINDOW_MINUTES. The per-IP limit is far higher than the per-email one: an office
behind one NAT shares it. Wrong passwords and codes are the sign-in throttle's
(accounts.sign_in_guard), shared with the console.

A refused request is answered with 429 before anything is checked or sent. Counters live in
Django's cache (Redis in production) so every web process sees the same counts. The per-email
count does not care whether the address exists, so a refusal reveals nothing about accounts.

The same cache also holds a decoy code for addresses that were sent no code (see decoy_*)."""

from django.conf import settings

from helpers import attempt_counter
from helpers.attempt_counter import cache


def _window_seconds():
    return settings.PORTAL_THROTTLE_WINDOW_MINUTES * 60


def refusal_message():
    return (
        f"Too many attempts. Wait {settings.PORTAL_THROTTLE_WINDOW_MINUTES} minutes and try again."
    )


def _limits(account, email, ip):
    limits = {}
    if (email or "").strip():
        key = f"portal-requests:account:{account.pk}:{attempt_counter.email_digest(email)}"
        limits[key] = settings.PORTAL_LINK_REQUESTS_MAX
    if ip:
        # Not per account: one address spraying many portals is still one address.
        limits[f"portal-requests:ip:{ip}"] = settings.PORTAL_LINK_REQUESTS_MAX_PER_IP
    return limits


def request_refused(account, email, ip):
    return any(
        attempt_counter.over_limit([key], limit)
        for key, limit in _limits(account, email, ip).items()
    )


def record_request(account, email, ip):
    for key, limit in _limits(account, email, ip).items():
        attempt_counter.count([key], limit, _window_seconds())


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
