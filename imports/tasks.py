"""The browser import runs here, in a Celery worker (in-process when there is no broker), and so
does its healing: a run that lost its database connection retries on a new one, and a job whose
worker died (or whose task was lost with the broker) is resumed by a beat task."""

import csv
import logging
import secrets
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from imports import dry_runs
from imports.column_mapping import MappingError
from imports.csv_reader import CsvError
from imports.models import ImportJob, stall_cutoff
from imports.pipeline import (
    Cancelled,
    Superseded,
    database_gone,
    drop_connection,
    failure_counts,
    new_run_token,
)

logger = logging.getLogger(__name__)

Status = ImportJob.Status
# A lost database connection is retried this many times, 1 s, 2 s ... 16 s apart (half a
# minute: a failover or a restart); after that the job waits, still running, for the sweep.
DATABASE_RETRIES = 5
# A job resumed this many times without committing a batch in between is failed: whatever
# stops its worker (a row that exhausts its memory, say) would stop the next one too.
MAX_STALLS = 5


@shared_task(bind=True, acks_late=True)
def run_import(self, job_id, batch_size=None, lease=None):
    """Apply the import job `job_id`. `lease` is the ticket it was queued with (`start_run`,
    `resume_stalled`, `resume_failed`): the run claims the job only while the job still carries
    it, so a message delivered twice, or one whose job was handed to another run meanwhile,
    does nothing. Safe to run twice: `apply` resumes after the last committed row, and a job
    that is no longer running is left alone. A cancel from the console stops it between
    batches (imports.pipeline.run), and the job stays cancelled.

    The database going away (a terminated connection, a restart) leaves the job running: the
    task closes the connection and comes back with a short countdown, holding the same run's
    token, and resumes after the last committed batch; after DATABASE_RETRIES the
    stalled-import sweep takes over."""
    job = None
    try:
        job = ImportJob.objects.filter(pk=job_id).first()
        if job is None or job.status != Status.RUNNING:
            return job.status if job else None
        if lease is None:
            lease = _ticket_for_unheld(job)
            if lease is None:
                return job.status
        pipeline = dry_runs.pipeline_of(job)
        pipeline.apply(
            job,
            batch_size=batch_size or settings.IMPORT_BATCH_SIZE or pipeline.BATCH_SIZE,
            lease=lease,
        )
    except Cancelled:
        logger.info("Import job %s cancelled", job_id)
    except Superseded:
        logger.info("Import job %s is held by another run now; this one stops", job_id)
    except (CsvError, MappingError) as error:
        logger.info("Import job %s stopped: %s", job_id, error)  # apply marked it failed
    except Exception as error:
        if not database_gone(error):
            raise
        drop_connection()
        # The token the run claimed the job with (or the ticket, if it failed before that).
        token = job.run_token if job is not None and job.run_token else lease
        if self.request.retries < DATABASE_RETRIES:
            logger.warning("Import job %s: database gone (%s); retrying", job_id, error)
            raise self.retry(
                args=(job_id,),
                kwargs={"batch_size": batch_size, "lease": token},
                countdown=2**self.request.retries,
                exc=None,
            ) from None
        logger.error("Import job %s: database gone (%s); left to the sweep", job_id, error)
        return None
    try:
        return ImportJob.objects.filter(pk=job_id).values_list("status", flat=True).first()
    except DatabaseError as error:
        if not database_gone(error):
            raise
        drop_connection()
        return None


def _ticket_for_unheld(job):
    """A ticket for a message that came without one (queued before tickets existed): only if
    no run holds the job and none is queued for it."""
    ticket = new_run_token()
    held = ImportJob.objects.filter(pk=job.pk, status=Status.RUNNING, run_token="")
    return ticket if held.update(run_token=ticket) else None


def queue_run(job_id, ticket):
    """Hand the job to a worker with `ticket`. Call it once the transaction that gave the job
    the ticket committed (the worker must see it). Returns whether the broker took it."""
    try:
        run_import.delay(job_id, lease=ticket)
    except Exception:  # broker unreachable
        logger.exception("Could not queue import job %s", job_id)
        return False
    return True


def start_run(job, options, by):
    """Start a job that is ready (mapped or validated, its files still there): it runs, with a
    ticket, and is queued once the caller's transaction commits. Returns the ticket, or None if
    the job was not ready (already started, cancelled, files deleted)."""
    ticket = new_run_token()
    now = timezone.now()
    started = ImportJob.objects.filter(
        pk=job.pk,
        status__in=(Status.MAPPED, Status.VALIDATED),
        files_deleted_at__isnull=True,
    ).update(
        status=Status.RUNNING,
        options=options,
        started_by=by,
        started_at=now,
        error_message="",
        run_token=ticket,
        progress_at=now,
        stall_count=0,
    )
    return ticket if started else None


def _stalled(cutoff):
    """Running jobs without a sign of progress since `cutoff` (a job queued but never picked
    up has no heartbeat yet: its start counts)."""
    return ImportJob.objects.filter(status=Status.RUNNING).filter(
        Q(progress_at__lt=cutoff)
        | Q(progress_at__isnull=True, started_at__lt=cutoff)
        | Q(progress_at__isnull=True, started_at__isnull=True, created_at__lt=cutoff)
    )


def gave_up_message(job):
    return (
        f"The import stopped making progress: it was resumed {MAX_STALLS} times after its "
        f"worker stopped, without getting past row {job.processed:,}. The rows before it are "
        "imported. Ask your administrator to check the import workers, then resume it."
    )


@shared_task
def resume_stalled_imports():
    """Beat task: hand every stalled import (no progress for IMPORT_STALL_MINUTES: its worker
    was killed, or its task was lost with the broker) to a worker again. Returns how many."""
    cutoff = stall_cutoff()
    return sum(
        resume_stalled(job_id, cutoff)
        for job_id in list(_stalled(cutoff).values_list("pk", flat=True))
    )


def resume_stalled(job_id, cutoff=None):
    """Give a stalled job a new ticket and queue it: the run that stalled, if it is alive at
    all, can no longer write (imports.pipeline), and the new run resumes after the last
    committed row. Only while the job is still stalled, so two sweeps, or a sweep and a person,
    hand it out once. A job that stalled MAX_STALLS times without a committed batch in between
    is failed instead. Returns whether it was handed out."""
    cutoff = cutoff or stall_cutoff()
    now = timezone.now()
    job = _stalled(cutoff).filter(pk=job_id).first()
    if job is None:
        return False
    if job.stall_count >= MAX_STALLS:
        # The token goes too: the run that stalled, should it wake up, must not write.
        given_up = _stalled(cutoff).filter(pk=job_id, stall_count__gte=MAX_STALLS)
        if given_up.update(
            status=Status.FAILED,
            finished_at=now,
            error_message=gave_up_message(job),
            run_token="",
        ):
            logger.error(
                "Import job %s failed: stalled %s times at row %s",
                job_id,
                MAX_STALLS,
                job.processed,
            )
        return False
    ticket = new_run_token()
    if (
        not _stalled(cutoff)
        .filter(pk=job_id)
        .update(run_token=ticket, progress_at=now, stall_count=F("stall_count") + 1)
    ):
        return False
    logger.warning(
        "Import job %s stalled (no progress since %s, row %s): resumed",
        job_id,
        job.heartbeat.isoformat(),
        job.processed,
    )
    transaction.on_commit(lambda: queue_run(job_id, ticket))
    return True


def resume_failed(job_id):
    """Run a failed import again from the console: it resumes after the last committed row.
    Returns whether it was handed out: the job had been started (a file that failed its dry run
    was never confirmed by anyone) and its files are still there."""
    ticket = new_run_token()
    now = timezone.now()
    resumed = ImportJob.objects.filter(
        pk=job_id, status=Status.FAILED, started_at__isnull=False, files_deleted_at__isnull=True
    ).update(
        status=Status.RUNNING,
        run_token=ticket,
        progress_at=now,
        stall_count=0,
        finished_at=None,
        error_message="",
    )
    if resumed:
        transaction.on_commit(lambda: queue_run(job_id, ticket))
    return bool(resumed)


@shared_task(acks_late=True)
def dry_run(job_id, token):
    """The review step's dry run of a big file (imports.dry_runs): its progress and report are
    kept on the job, which the review page polls. Run twice, the second run does it again."""
    dry_runs.run(job_id, token)


def start_dry_run(job, options):
    """Start a dry run of `job` with `options` (replacing any earlier one); returns its state.
    A small file is checked before this returns; a big one is queued once the transaction
    commits."""
    token = secrets.token_hex(8)
    state = {
        "token": token,
        "options": options,
        "state": dry_runs.RUNNING,
        "checked": 0,
        "started_at": timezone.now().isoformat(),
    }
    ImportJob.objects.filter(pk=job.pk).update(dry_run=state)
    job.dry_run = state
    if _file_size(job) <= dry_runs.INLINE_MAX_BYTES:
        dry_runs.run(job.pk, token)
    else:
        transaction.on_commit(lambda: _queue_dry_run(job.pk, token))
    job.refresh_from_db()
    return job.dry_run


def _file_size(job):
    try:
        return job.source_file.size
    except (OSError, ValueError):
        return 0  # checked in the request, which says the file is missing


def _queue_dry_run(job_id, token):
    try:
        dry_run.delay(job_id, token)
    except Exception:  # broker unreachable: say so; "Check again" queues it again
        logger.exception("Could not queue the dry run of import job %s", job_id)
        dry_runs.update(
            job_id,
            token,
            state=dry_runs.FAILED,
            error="The file could not be checked now (task queue unavailable). "
            "Check again in a minute.",
        )


FILE_FIELDS = ("source_file", "success_file", "failure_file")


@shared_task
def delete_expired_import_files():
    """Beat task: delete the uploaded file and the result files of imports that ended (or, never
    started, were uploaded) more than IMPORT_FILE_RETENTION_DAYS ago. They hold people's data,
    which is kept no longer than needed; the job's row, its counts and its failures per reason
    stay as history. A running job keeps its files (a resumed run needs them). Idempotent: a
    job is done once (`files_deleted_at`), and a second run, or two at once, find nothing left.
    Returns how many jobs it cleared."""
    cutoff = timezone.now() - timedelta(days=settings.IMPORT_FILE_RETENTION_DAYS)
    expired = (
        ImportJob.objects.filter(files_deleted_at__isnull=True)
        .exclude(status=ImportJob.Status.RUNNING)
        .alias(ended=Coalesce("finished_at", "created_at"))
        .filter(ended__lt=cutoff)
    )
    cleared = 0
    # A plain list, not a server-side cursor held open across the per-job transactions below.
    for job_id in list(expired.values_list("pk", flat=True)):
        cleared += _delete_files(job_id)
    return cleared


def _delete_files(job_id):
    with transaction.atomic():
        # Locked and checked again: a start from the console between the query and here keeps
        # the job's files (it is running now), and the start refuses a job already cleared.
        job = (
            ImportJob.objects.select_for_update()
            .filter(pk=job_id, files_deleted_at__isnull=True)
            .exclude(status=ImportJob.Status.RUNNING)
            .first()
        )
        if job is None:
            return 0
        try:
            reasons = failure_counts(job)
        except (OSError, ValueError, KeyError, csv.Error):  # gone or unreadable: none to keep
            reasons = {}
        for name in FILE_FIELDS:
            fieldfile = getattr(job, name)
            if fieldfile.name:
                fieldfile.storage.delete(fieldfile.name)  # a file already gone is fine
        dry_runs.delete_files(job)
        # The names are cleared, not only the files: storage hands a freed name to the next
        # upload, and a stale name would then serve that (maybe another account's) file.
        ImportJob.objects.filter(pk=job.pk).update(
            **dict.fromkeys(FILE_FIELDS, ""),
            files_deleted_at=timezone.now(),
            failure_reason_counts=reasons,
        )
    logger.info("Import job %s: files deleted after the retention period", job_id)
    return 1
