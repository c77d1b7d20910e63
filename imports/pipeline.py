"""What the import targets' pipelines share: the file, the batches, the bookkeeping of a run
(resume after the last committed batch, progress, done or failed) and the dry-run report."""

import csv
import io
import logging
import secrets
from collections import defaultdict
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from helpers import planner_statistics
from imports import read_ahead
from imports.column_mapping import MappingError, row_reader
from imports.csv_reader import CsvError
from imports.models import ImportJob
from webhooks import events as webhook_events

logger = logging.getLogger(__name__)

EXAMPLES_PER_REASON = 5

# Set by imports.dry_runs around a dry run: called with every failed row (line, values,
# failure), which it writes to the dry run's failure file, so the review offers the whole list
# before anything is imported. The report itself keeps only a few examples per reason.
dry_run_failures = ContextVar("dry_run_failures", default=None)


@dataclass
class DryRunReport:
    """A dry run's outcome: failures counted per reason code, with the first few rows of each.
    A target adds its own counts and says which values of a row make a useful example."""

    total_rows: int = 0
    would_create: int = 0
    failures: dict = field(default_factory=dict)  # code -> {"count", "label", "examples"}
    mapping: dict = field(default_factory=dict)
    encoding: str = ""

    reason_labels = {}  # class attribute: the target's labels for its reason codes

    @property
    def failed(self):
        return sum(entry["count"] for entry in self.failures.values())

    def example(self, values):
        raise NotImplementedError

    def add_failure(self, line, values, failure):
        label = self.reason_labels.get(failure.code, failure.code)
        entry = self.failures.setdefault(failure.code, {"count": 0, "label": label, "examples": []})
        entry["count"] += 1
        if len(entry["examples"]) < EXAMPLES_PER_REASON:
            entry["examples"].append(
                {"line": line, **self.example(values), "reason": failure.reason}
            )
        write_failure = dry_run_failures.get()
        if write_failure is not None:
            write_failure(line, values, failure)


def max_bytes():
    return settings.IMPORT_MAX_BYTES


def batches(csv_file, mapping, batch_size):
    batch = []
    values = row_reader(mapping)
    for line, cells in csv_file.rows():
        batch.append((line, values(cells)))
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def open_source(job_or_file):
    if isinstance(job_or_file, ImportJob):
        source = job_or_file.source_file
        source.open("rb")
        return source
    return job_or_file


COUNT_FIELDS = [
    "processed",
    "created",
    "failed",
    "last_processed_line",
    "success_file_bytes",
    "failure_file_bytes",
]


SETTING_UP = (
    ImportJob.Status.UPLOADED,
    ImportJob.Status.MAPPED,
    ImportJob.Status.VALIDATED,
)

RESUMABLE = (
    ImportJob.Status.UPLOADED,
    ImportJob.Status.MAPPED,
    ImportJob.Status.VALIDATED,
    ImportJob.Status.RUNNING,
    ImportJob.Status.FAILED,
)


# The database went away under the run: a dropped or terminated connection, a restarted
# server, a statement that hit the batch's time limit (see batch_transaction), a deadlock. Worth
# another try on a new connection; nothing of the batch in flight was committed.
DATABASE_GONE = (OperationalError, InterfaceError)


# PostgreSQL ending the session: connection exceptions, operator intervention (terminated,
# shut down), and a session that hung in a transaction (raised as InternalError).
SESSION_ENDED_SQLSTATES = ("08", "57", "25P03")


def database_gone(error):
    """Whether `error` is one of DATABASE_GONE, or another database error that cost the run its
    connection."""
    if isinstance(error, DATABASE_GONE):
        return True
    if not isinstance(error, DatabaseError):
        return False
    sqlstate = getattr(error.__cause__, "sqlstate", None) or ""
    if sqlstate.startswith(SESSION_ENDED_SQLSTATES):
        return True
    raw = connection.connection  # None once Django dropped it (a failed rollback)
    return raw is None or bool(getattr(raw, "closed", False))


class Cancelled(Exception):
    """Someone cancelled the job (in the console) while it ran: the run stops, the batches
    committed before stay done, the batch in flight is rolled back."""


class Superseded(Exception):
    """Another run holds the job now (this one stalled and the job was resumed, or a direct
    call took it over): this run stops, and the batch in flight is rolled back."""


def new_run_token():
    return secrets.token_hex(16)


def drop_connection():
    """After one of DATABASE_GONE the connection may be dead, and Django would hand it out
    again ("the connection is closed") until a request ends: close it, so that the next query
    opens a new one. Inside a caller's transaction it stays: the caller rolls back first."""
    if not connection.in_atomic_block:
        connection.close()


def _no_longer_running(job):
    """The error for a run whose conditional write found the job changed: Cancelled if it was
    cancelled, Superseded if another run holds it."""
    status, token = ImportJob.objects.filter(pk=job.pk).values_list(
        "status", "run_token"
    ).first() or (None, None)
    if status == ImportJob.Status.CANCELLED:
        return Cancelled()
    if status is not None and token != job.run_token:  # running, or finished by the other run
        return Superseded(f"Import job {job.pk} is held by another run now.")
    return RuntimeError(f"Import job {job.pk} is no longer running (it is {status}).")


def _held(job):
    """The job, only while it is running and this run holds it."""
    return ImportJob.objects.filter(
        pk=job.pk, status=ImportJob.Status.RUNNING, run_token=job.run_token
    )


def keep_lease(job):
    """Between batches: the run's heartbeat, and a stop before the next batch's work if the job
    was cancelled or another run holds it now."""
    if not _held(job).update(progress_at=timezone.now()):
        raise _no_longer_running(job)


def save_progress(job):
    """Save the batch's counts, in the batch's transaction, only while this run holds the job:
    the UPDATE is conditional, so a cancel or a resume that committed first makes the batch
    roll back (Cancelled, Superseded), and one that comes later waits for this row lock and
    then applies. A resumed run reads the counts only after its claim, so every row is written
    by exactly one run."""
    counts = {name: getattr(job, name) for name in COUNT_FIELDS}
    if not _held(job).update(**counts, progress_at=timezone.now(), stall_count=0):
        raise _no_longer_running(job)


@contextmanager
def batch_transaction():
    """The transaction of one batch. On PostgreSQL neither a statement nor a wait for the
    worker may last longer than half of IMPORT_STALL_MINUTES: a worker paused in the middle of
    a batch (stopped, frozen, swapped out) would otherwise keep the account's row and the rows
    it inserted locked, and the run that resumes the job would wait behind it for ever."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            limit = f"{max(round(settings.IMPORT_STALL_MINUTES * 30_000), 1000)}ms"
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('statement_timeout', %s, true), "
                    "set_config('idle_in_transaction_session_timeout', %s, true)",
                    [limit, limit],
                )
        yield


def mark_failed(job, error):
    """The job failed (a bad file, an error): status, message and end time, unless it was
    cancelled meanwhile (the person's cancel is what they see) or another run holds it now."""
    if isinstance(error, CsvError):
        message = error.message
    elif isinstance(error, MappingError):
        message = " ".join(error.messages)
    else:
        message = str(error) or error.__class__.__name__
    job.status = ImportJob.Status.FAILED
    job.error_message = message
    job.finished_at = timezone.now()
    with transaction.atomic():
        marked = (
            ImportJob.objects.filter(pk=job.pk, run_token=job.run_token)
            .exclude(status=ImportJob.Status.CANCELLED)
            .update(status=job.status, error_message=job.error_message, finished_at=job.finished_at)
        )
        if marked:
            webhook_events.import_finished(job)


def end_dry_run(job_or_file, *, mapping, options, total_rows):
    """After a dry run of a job: it keeps the mapping, options and row count and becomes
    validated, only while it is still being set up (a dry run that ends after the import
    started, or after a cancel, changes nothing)."""
    if not isinstance(job_or_file, ImportJob):
        return
    job = job_or_file
    changes = {"column_mapping": mapping, "options": options, "total_rows": total_rows}
    if ImportJob.objects.filter(pk=job.pk, status__in=SETTING_UP).update(
        status=ImportJob.Status.VALIDATED, **changes
    ):
        for name, value in {"status": ImportJob.Status.VALIDATED, **changes}.items():
            setattr(job, name, value)


def failure_counts(job):
    """Failures per reason code, read back (streaming) from the job's failure file."""
    counts = defaultdict(int)
    if not job.failure_file:
        return counts
    with job.failure_file.open("rb") as binary:
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
        for row in csv.DictReader(text):
            counts[row["ReasonCode"]] += 1
    return dict(counts)


def _claim(job, lease):
    """Take the job for this run with a token of its own: only if it still carries the ticket
    `lease` it was queued with, or, without one, from whichever run held it. Then read what the
    earlier runs committed: after the claim, so that no batch of theirs commits unseen."""
    token = new_run_token()
    claimable = ImportJob.objects.filter(pk=job.pk, status__in=RESUMABLE)
    if lease is not None:
        claimable = claimable.filter(run_token=lease)
    if not claimable.update(run_token=token, progress_at=timezone.now()):
        job.refresh_from_db()
        if job.status == ImportJob.Status.CANCELLED:
            raise Cancelled
        if job.status not in RESUMABLE:
            raise ValueError(f"Import job {job.pk} is {job.get_status_display()}; it cannot run.")
        raise Superseded(f"Import job {job.pk} was handed to another run.")
    job.run_token = token  # a retry after a failed refresh must still name this run
    job.refresh_from_db()
    job.run_token = token  # ours, even if another claim swapped it already: writes then fail


def _refresh_quietly(job):
    try:
        job.refresh_from_db()
    except DatabaseError as error:
        if not database_gone(error):
            raise
        drop_connection()


def run(
    job,
    *,
    open_and_map,
    normalise_options,
    make_checker,
    result_files,
    apply_batch,
    batch_size,
    progress,
    loads,
    lease=None,
    check_rows=None,
    read_ahead_safe=False,
):
    """Apply `job`'s file a batch at a time, resuming after `job.last_processed_line`.

    Rows up to that line are only shown to the checker (duplicates still count); the rest go
    to `apply_batch(job, checker, batch, rows, results)`, which commits them with the job's
    counts (`save_progress`); with `check_rows`, `rows` are what `check_rows(checker, batch,
    rows)` made of them. With `read_ahead_safe` (the checker's lookups cannot be changed by the
    batch before, except for rows its own memory refuses), each batch is read, looked up and
    checked while the one before is written (imports.read_ahead). `progress(job)` is called
    after each committed batch. A CsvError part-way through marks the job failed (rows before
    it stay done) and is raised.

    The run first claims the job (`lease`: the ticket it was queued with, see imports.tasks;
    None takes the job over, for a command-line run) and then writes the job's status only with
    UPDATEs conditional on holding it, so a cancel from the console is never overwritten and a
    run given up on (stalled, then resumed by another) never writes again: each batch saves
    its counts only while the job is running and held, and the job is done only if it still
    was at the end. A cancelled job raises Cancelled, a job held by another run Superseded
    (status left as the other side set it). `loads`, the model whose table the batches fill,
    is analysed when the planner's statistics fall far behind (helpers.planner_statistics).

    An error of a lost database (`database_gone`) is raised with the job left running and
    nothing marked: the caller retries on a new connection, or the stalled-import sweep resumes
    it. Returns the job."""
    _claim(job, lease)
    try:
        csv_file, mapping = open_and_map(job, job.column_mapping or None)
        if not job.total_rows:
            job.total_rows = sum(1 for _ in csv_file.rows())
        job.column_mapping = mapping
        job.options = normalise_options(job.options)
        job.status = ImportJob.Status.RUNNING
        job.started_at = job.started_at or timezone.now()
        job.error_message = ""
        claimed = ImportJob.objects.filter(
            pk=job.pk, status__in=RESUMABLE, run_token=job.run_token
        ).update(
            status=job.status,
            total_rows=job.total_rows,
            column_mapping=job.column_mapping,
            options=job.options,
            started_at=job.started_at,
            error_message="",
        )
        if not claimed:
            raise _no_longer_running(job)
        checker = make_checker(job.portal_account, job.options)
        statistics = planner_statistics.LoadStatistics(loads, job.portal_account_id)
        with result_files(job) as results:
            if not _held(job).update(
                success_file=job.success_file.name, failure_file=job.failure_file.name
            ):
                raise _no_longer_running(job)
            done_before = job.last_processed_line

            def prepare(rows):
                batch = checker.load_batch(rows)
                todo = []
                for line, values in rows:
                    if line <= done_before:
                        checker.mark_seen(line, values, batch)
                    else:
                        todo.append((line, values))
                if todo and check_rows is not None:
                    todo = check_rows(checker, batch, todo)
                return batch, todo

            rows_of = batches(csv_file, mapping, batch_size)
            with read_ahead.prepared(rows_of, prepare, read_ahead_safe) as ready:
                for batch, todo in ready:
                    keep_lease(job)
                    if todo:
                        created = job.created
                        apply_batch(job, checker, batch, todo, results)
                        statistics.added(job.created - created)
                        if progress is not None:
                            progress(job)
        finished_at = timezone.now()
        with transaction.atomic():
            if not _held(job).update(status=ImportJob.Status.DONE, finished_at=finished_at):
                raise _no_longer_running(job)
            job.status, job.finished_at = ImportJob.Status.DONE, finished_at
            webhook_events.import_finished(job)
    except (Cancelled, Superseded):
        _refresh_quietly(job)
        raise
    except Exception as error:
        if database_gone(error):
            drop_connection()
            raise
        try:
            job.refresh_from_db(fields=COUNT_FIELDS)  # a rolled-back batch counted in memory only
            mark_failed(job, error)
        except DatabaseError as marking:
            if not database_gone(marking):
                raise
            # Not marked: the job stays running, and the sweep resumes it once it stalls.
            drop_connection()
            logger.warning("Import job %s: could not mark it failed, database gone", job.pk)
        raise
    finally:
        job.source_file.close()
    return job
