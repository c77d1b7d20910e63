"""An import's next batch read from the file, looked up and checked in a thread while the
current one is written.

Why: while a batch is written the worker mostly waits on PostgreSQL, and reading the next
rows, looking up their contacts and checking them (about a tenth of an import's time) came
after it, one after the other. In a thread of its own, over a connection of that thread's, the
next batch is ready when this one commits (bench/imports.py: 5,216 to 5,772 rows/s).

The portal-user import only (imports.portal_users); the contacts import writes the contacts its
lookups read, so it stays one batch after the other. What stays as it was: one thread prepares
every batch, in file order, so the checker's memory of the contacts seen (the duplicate rule)
is touched by it alone. Its lookup sees the database as committed before the batch being
written; a contact that batch gives a user can come again only as a duplicate row, which the
checker catches first, and anything else that changed meanwhile (a console invite, a role
deactivated) is caught where it always was: by the writes' own checks under the account lock
and by the unique constraints, as for a change made by another admin.

Only on PostgreSQL outside a transaction (a worker's task or the import command): a test's
transaction is not seen from another connection, nor is SQLite's database in memory. Elsewhere
the batches are prepared in line, by the same function."""

import contextvars
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from django.conf import settings
from django.db import connection

_END = object()


def possible(safe):
    return (
        safe
        and settings.IMPORT_READ_AHEAD
        and connection.vendor == "postgresql"
        and not connection.in_atomic_block
    )


@contextmanager
def prepared(batches, prepare, safe):
    """An iterator of `prepare(rows)` for each of `batches`, the next one made in a thread
    while the caller works on this one (where `possible`, and `safe` for the import: see
    above). An error of the file or of `prepare` is raised where its batch would have come,
    after the batches before it."""
    if not possible(safe):
        yield map(prepare, batches)
        return
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-read-ahead")
    rows_of = iter(batches)

    def next_batch():
        # The thread's connection lasts the run (closed below). Between batches it is checked
        # as between requests (CONN_HEALTH_CHECKS: a broken one is replaced on its next use),
        # but not aged: with CONN_MAX_AGE 0, close_if_unusable_or_obsolete would connect anew
        # for every batch.
        connection.health_check_done = False
        rows = next(rows_of, _END)
        return _END if rows is _END else prepare(rows)

    # The thread works in a copy of the caller's context: what the caller set there (who acts,
    # for the audit trail's label) holds for the batches it prepares.
    context = contextvars.copy_context()

    def ahead():
        future = executor.submit(context.run, next_batch)
        while (batch := future.result()) is not _END:
            future = executor.submit(context.run, next_batch)
            yield batch

    try:
        yield ahead()
    finally:
        # After the batch the thread may still be preparing: its connection is its own.
        try:
            executor.submit(_close_connection).result()
        finally:
            executor.shutdown()


def _close_connection():
    connection.close()  # this thread's (a bound method taken elsewhere would be another's)
