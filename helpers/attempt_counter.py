"""Attempt counters in the cache, for throttling sign-ins and the emails people may ask for.

Two shapes. A rate (`count` / `over_limit`): a counter per key (an email's digest, an IP) lives
for a window; reaching the limit refuses further attempts until a full window has passed since
the last one. A lockout (`fail` / `wait_seconds`): past the limit each failure locks the key for
a delay that doubles with every further failure, and the right answer is taken again as soon as
the delay is over. With Redis as the cache (production) add + incr are atomic, so parallel
guesses cannot slip under the limit."""

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


def fail(key, limit, *, first_delay, max_delay, window_seconds):
    """Count a failure for `key`; from the `limit`-th on, lock it for `first_delay` seconds,
    doubled for each failure after that (at most `max_delay`). Returns the lock's length."""
    count_key = f"{key}:n"
    cache.add(count_key, 0, timeout=window_seconds)
    try:
        failures = cache.incr(count_key)
    except ValueError:  # expired between add and incr
        cache.set(count_key, 1, timeout=window_seconds)
        failures = 1
    if failures < limit:
        return 0
    delay = min(first_delay * 2 ** (failures - limit), max_delay)
    cache.set(f"{key}:until", time.time() + delay, timeout=int(delay) + 1)
    # The count outlives the lock by a window, or the next failure would start from 1 again.
    cache.touch(count_key, timeout=int(delay) + window_seconds)
    return delay


def wait_seconds(keys):
    """How long the longest lock among `keys` still lasts (0: none is locked)."""
    now = time.time()
    untils = cache.get_many([f"{key}:until" for key in keys]).values()
    return max([until - now for until in untils] + [0])


def clear(keys):
    cache.delete_many([f"{key}:{part}" for key in keys for part in ("n", "until")])
