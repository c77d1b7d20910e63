"""Attempt counters in the cache, for throttling sign-ins and the emails people may ask for.

Two shapes. A rate (`count` / `over_limit`): a counter per key (an email's digest, an IP) lives
for a window; reaching the limit refuses further attempts until a full window has passed since
the last one. A lockout (`take_attempt` / `lock_if_due` / `wait_seconds`): past the limit each
failure locks the key for a delay that doubles with every further failure, and the right answer
is taken again as soon as the delay is over. Every attempt is counted before its secret is
checked, and with Redis as the cache (production) add + incr are atomic, so parallel guesses
cannot slip under the limit."""

import hashlib
import logging
import time

from django.core.cache import cache as shared_cache
from django.core.cache.backends.locmem import LocMemCache

log = logging.getLogger(__name__)
_this_process = LocMemCache("attempt-counters-while-the-cache-is-down", {})


class _Counters:
    """The shared cache (Redis in production) or, while it cannot be reached, this process's
    memory: signing in must keep working when Redis is down, with counts per process meanwhile
    (weaker: each process allows its own tries) rather than a 500 for everyone. After a failure
    the shared cache is left alone for a few seconds, so that a request makes one slow call, not
    one per counter."""

    RETRY_AFTER_SECONDS = 5

    def __init__(self):
        self.unreachable_until = 0.0

    def __getattr__(self, name):
        def call(*args, **kwargs):
            if time.monotonic() >= self.unreachable_until:
                try:
                    return getattr(shared_cache, name)(*args, **kwargs)
                except ValueError:
                    raise  # incr of a key that is not there: an answer, not an outage
                except Exception:
                    log.warning("The cache is unreachable; attempt counters are per process")
                    self.unreachable_until = time.monotonic() + self.RETRY_AFTER_SECONDS
            return getattr(_this_process, name)(*args, **kwargs)

        return call


cache = _Counters()


def email_digest(email):
    # Hashed: an email may hold characters some cache backends refuse in keys.
    return hashlib.sha256((email or "").strip().lower().encode()).hexdigest()


def over_limit(keys, limit):
    return any(count >= limit for count in cache.get_many(keys).values())


def count(keys, limit, window_seconds):
    for key in keys:
        cache.add(key, 0, timeout=window_seconds)
        try:
            value = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=window_seconds)
            value = 1
        if value >= limit:
            # The refusal lasts a full window from the last attempt, as the message promises.
            cache.touch(key, timeout=window_seconds)


def forget(keys):
    cache.delete_many(keys)


def take_attempt(key, limit, window_seconds):
    """Count an attempt for `key` as a failure before its secret is checked (`give_back` or
    `clear` takes it back when the secret was right): parallel guesses are each counted before
    any is checked, so no more than `limit` get past, and after a lock, one. Returns 0 when
    this attempt may be checked, else how long to wait: an attempt past the count is refused
    unchecked and given back (it sets no lock: a second request sent with a right one, a double
    submit, must not lock anybody out)."""
    failures = _incr(f"{key}:n", window_seconds)
    # After a lock, one more attempt may be checked once it is over (see _lock).
    if failures <= (cache.get(f"{key}:allowed") or limit):
        return 0
    give_back(key)
    return max(wait_seconds([key]), 1)


def lock_if_due(key, limit, *, first_delay, max_delay, window_seconds):
    """After a wrong secret (its attempt counted by `take_attempt`): lock the key once its
    failures have reached `limit`. Returns the lock's length (0: none yet)."""
    failures = cache.get(f"{key}:n") or 0
    if failures < limit:
        return 0
    return _lock(key, failures, limit, first_delay, max_delay, window_seconds)


def give_back(key):
    """The secret was right: the attempt `take_attempt` counted is not a failure."""
    try:
        if cache.decr(f"{key}:n") < 0:
            cache.delete(f"{key}:n")
    except ValueError:
        pass  # expired meanwhile: nothing to give back


def _incr(count_key, window_seconds):
    cache.add(count_key, 0, timeout=window_seconds)
    try:
        return cache.incr(count_key)
    except ValueError:  # expired between add and incr
        cache.set(count_key, 1, timeout=window_seconds)
        return 1


def _lock(key, failures, limit, first_delay, max_delay, window_seconds):
    delay = min(first_delay * 2 ** (failures - limit), max_delay)
    cache.set(f"{key}:until", time.time() + delay, timeout=int(delay) + 1)
    # The count outlives the lock by a window, or the next failure would start from 1 again;
    # once the lock is over, the next attempt (one) may be checked.
    kept = int(delay) + window_seconds
    cache.touch(f"{key}:n", timeout=kept)
    cache.set(f"{key}:allowed", failures + 1, timeout=kept)
    return delay


def wait_seconds(keys):
    """How long the longest lock among `keys` still lasts (0: none is locked)."""
    now = time.time()
    untils = cache.get_many([f"{key}:until" for key in keys]).values()
    return max([until - now for until in untils] + [0])


def clear(keys):
    cache.delete_many([f"{key}:{part}" for key in keys for part in ("n", "until", "allowed")])
