"""The sending pace: a portal account sends at most OUTBOX_RATE_PER_ACCOUNT_PER_MINUTE emails a
minute in each lane (accounts.models.outbox: urgent, bulk), however many worker processes on
however many machines send them. A 10,000-user import is spread over the minutes it needs; other
accounts' emails never wait for it, and neither do the account's own sign-in codes and links:
the urgent lane has a pace of its own, so at most twice the limit leaves in a minute when both
lanes are busy.

How
---
Time is cut into short windows, each with a few places: ceil(limit / 60) places in a window of
60 s x places / limit (rounded up to the millisecond): one to two seconds for limits of 60 a
minute and more (120 a minute: 2 places a second; 600: 10 a second), one place every 60 / limit
seconds below that. One counter
per portal account and window lives in Django's cache, created with `add` and raised with
`incr`. Both are atomic in Redis, so every worker that shares the cache (CACHE_URL) sees the
same count and no window hands out more places than it has. With the default in-memory cache
each process counts alone: fine for one worker process, N times the pace for N of them. Windows
are read from each machine's clock, so the workers' clocks must agree (NTP).

An email asks for its turn when a worker is about to send it:

- It takes a place in the current window. If there is one, it leaves at once: an account that
  is not busy never waits.
- Otherwise it takes a place in the first later window with room, and leaves then (places of a
  window are spread over it). Its Celery task is re-scheduled for that moment with the
  reservation (`slot`), so the re-run sends without counting again. A re-run that comes after
  its window has passed asks again, and so queues behind the account's backlog: a window's
  places cannot be spent later. That happens when the worker is busy, typically with the
  first pass over a large backlog, when each email takes its turn.
- So that the 10,000th email of an import does not try each full window in turn, a hint per
  account remembers "every window before this one is full". It is written without a lock; a
  hint that lags only costs a few more tries, and it never skips a window with room because
  counters only go up.

What it promises: in any 60 seconds, at most the limit plus one window's places (120 a minute:
at most 122; 600: at most 610), and a backlog drains at the limit, evenly, from the first
minute on, with no burst at the turn of a minute. A place taken by an email that then fails or
is cancelled is not given back: the pace errs on the slow side.

Why windows of a second rather than of a minute: with minute windows an account that starts a
burst late in a minute sends that minute's whole allowance at once and the next minute's right
after, close to twice the limit in 60 seconds. Why not the database: the counters are hot,
short-lived and need no history, and a lock per portal account would serialise every sender of
the account and contend with the license locks on the same row.

Waiting is not failing: a deferred row keeps its attempts and has no error; delivery.deliver
writes its turn to `next_attempt_at`, which keeps the sweep away from the row until its turn
has come. Tasks run eagerly (no broker: the embedded demo, most tests) skip the pace, since
nothing would run them later. A limit of 0 turns the pace off.
"""

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

# Counters outlive their window by this many seconds, so that no incr can race the key's expiry
# (an incr on an expired Redis key would start a counter that never expires).
MARGIN_SECONDS = 60


@dataclass(frozen=True)
class Turn:
    """When an email may leave: `slot` in milliseconds since the epoch, `wait` in seconds from
    now (0: now)."""

    slot: int
    wait: float

    @property
    def now(self):
        return self.wait <= 0

    @property
    def starts(self):
        return datetime.fromtimestamp(self.slot / 1000, tz=UTC)


def windows(limit):
    """(window length in milliseconds, places in a window) for a limit a minute."""
    places = math.ceil(limit / 60)
    return math.ceil(60_000 * places / limit), places


def take_turn(account_id, slot=None, lane="bulk"):
    """The turn of the next email of a portal account in a lane; `slot` is a turn reserved
    earlier."""
    limit = settings.OUTBOX_RATE_PER_ACCOUNT_PER_MINUTE
    now = int(timezone.now().timestamp() * 1000)
    if limit <= 0:
        return Turn(now, 0)
    length, places = windows(limit)
    if slot is not None:
        window = slot // length
        if now < window * length:
            return Turn(slot, (slot - now) / 1000)
        if now < (window + 1) * length:
            return Turn(now, 0)

    counter = _Counter(account_id, lane, length, now)
    window = now // length
    if counter.take_place(window) <= places:
        return Turn(now, 0)

    first = max(window + 1, cache.get(counter.hint_key) or 0)
    window = first
    while (place := counter.take_place(window)) > places:
        window += 1
    first_with_room = window + 1 if place == places else window
    if first_with_room > first:
        cache.set(counter.hint_key, first_with_room, timeout=counter.lifetime(first_with_room))
    slot = window * length + (place - 1) * length // places
    return Turn(slot, (slot - now) / 1000)


def take_turns(account_id, count, lane="bulk"):
    """take_turn for `count` emails of a portal account at once (the batch sender's claim): the
    current window's places in one counter call, and the rest one at a time as take_turn hands
    them out (that is the account's backlog, which waits anyway)."""
    limit = settings.OUTBOX_RATE_PER_ACCOUNT_PER_MINUTE
    now = int(timezone.now().timestamp() * 1000)
    if limit <= 0:
        return [Turn(now, 0)] * count
    length, places = windows(limit)
    last = _Counter(account_id, lane, length, now).take_place(now // length, count)
    room = max(0, min(count, places - (last - count)))
    return [Turn(now, 0)] * room + [take_turn(account_id, None, lane) for _ in range(count - room)]


class _Counter:
    def __init__(self, account_id, lane, length, now):
        # The window length is in the keys: a changed limit starts counters of its own.
        self.prefix = f"outbox-pace:{account_id}:{lane}:{length}"
        self.hint_key = f"{self.prefix}:first-with-room"
        self.length = length
        self.now = now

    def take_place(self, window, count=1):
        """The last of `count` places taken in the window (over its places: no room)."""
        key = f"{self.prefix}:{window}"
        try:
            return cache.incr(key, count)
        except ValueError:  # the window's first email
            cache.add(key, 0, timeout=self.lifetime(window))
            return cache.incr(key, count)

    def lifetime(self, window):
        return math.ceil(((window + 1) * self.length - self.now) / 1000) + MARGIN_SECONDS
