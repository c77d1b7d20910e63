"""Two batches of an import written at once, each in a transaction of its own over a connection
of its own, taking turns for everything shared and committing in file order.

Why: with the rows checked and the writes built ahead (imports.read_ahead,
accounts.bulk_invites.plan), a batch's time is PostgreSQL's, on one connection, so one core.
While a batch holds the account lock (its users, then the commit's foreign-key checks), the
next batch can already write what needs no lock: its audit events and outbox rows, which nobody
sees before it commits.

The rule for a batch's work: before its turn (`wait_turn`) it may only write rows of its own
transaction that nobody else reads; everything shared (the account lock, the job's counts, the
result files, the checker's memory) comes after. Its turn comes once the batch before it has
ended; if that one failed, `wait_turn` raises EarlierBatchFailed and this one rolls back, so
batches commit in file order and a run that stops leaves the batches before a point, as one
batch after the other does.

Only where the read-ahead runs (PostgreSQL outside a transaction) and the import says its
batches take turns; elsewhere each batch is written in the caller's thread, in turn.
"""

import contextvars
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from threading import Event

from django.db import connection

_turn = contextvars.ContextVar("import_batch_turn", default=None)


class EarlierBatchFailed(Exception):
    """The batch before this one failed: this one rolls back without its turn."""


def wait_turn():
    """Wait until the batch before this one has ended: from here on the batch may touch what
    is shared. At once where batches are written one after the other."""
    wait = _turn.get()
    if wait is not None:
        wait()


class _End:
    def __init__(self):
        self.done = Event()
        self.failed = False

    def wait(self):
        self.done.wait()
        if self.failed:
            raise EarlierBatchFailed()


class _InTurn:
    """Each batch written in the caller's thread, when it is submitted."""

    def submit(self, work):
        return [work()]

    def finish(self):
        return []


class _Pair:
    """Batches written by two threads in turn, at most two at a time."""

    def __init__(self):
        self.threads = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"import-writer-{number}")
            for number in (0, 1)
        ]
        self.in_flight = deque()
        self.submitted = 0
        self.last_end = None

    def submit(self, work):
        """Start `work` (a batch); returns the results of the batches that had to end first,
        in file order."""
        ended = [self._next_result()] if len(self.in_flight) == 2 else []
        end, before = _End(), self.last_end

        def batch():
            turn = _turn.set(before.wait if before is not None else None)
            try:
                result = work()
            except BaseException:
                end.failed = True
                raise
            finally:
                _turn.reset(turn)
                end.done.set()
            return result

        thread = self.threads[self.submitted % 2]
        self.in_flight.append(thread.submit(contextvars.copy_context().run, batch))
        self.submitted += 1
        self.last_end = end
        return ended

    def finish(self):
        """The results of the batches still in flight, in file order."""
        return [self._next_result() for _ in range(len(self.in_flight))]

    def _next_result(self):
        future = self.in_flight.popleft()
        try:
            return future.result()
        except BaseException:
            self._wait_for_the_rest()
            raise

    def _wait_for_the_rest(self):
        # The later batches roll back on their turn (EarlierBatchFailed), or fail on their own.
        while self.in_flight:
            later = self.in_flight.popleft()
            with suppress(BaseException):  # the first failure is the one raised
                later.result()

    def close(self):
        self._wait_for_the_rest()
        for thread in self.threads:
            try:
                thread.submit(_close_connection).result()
            finally:
                thread.shutdown()


@contextmanager
def writing(in_pairs):
    """`writers` with `submit(work)` and `finish()`, each returning the results of the batches
    that ended, in file order. `in_pairs`: two batches at once (see the module's docstring)."""
    if not in_pairs:
        yield _InTurn()
        return
    pair = _Pair()
    try:
        yield pair
    finally:
        pair.close()


def _close_connection():
    connection.close()  # this thread's
