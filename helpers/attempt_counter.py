"""Attempt counters in the cache, for throttling the console's and the portal's sign-ins.

A counter per key (an email's digest, an IP) lives for a window; reaching the limit refuses
further attempts until a full window has passed since the last one. With Redis as the cache
(production) add + incr are atomic, so parallel guesses cannot slip under the limit."""

import hashlib

from django.core.cache import cache


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
