"""The browser import runs here, in a Celery worker (in-process when there is no broker)."""

import csv
import logging
import secrets
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models.functions import Coalesce
from django.utils import timezone

from imports import contacts_import, dry_runs, portal_users
from imports.column_mapping import MappingError
from imports.csv_reader import CsvError
from imports.models import ImportJob
from imports.pipeline import Cancelled, failure_counts

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def run_import(job_id, batch_size=None):
    """Apply the import job `job_id`. Safe to run twice: `apply` resumes after the last
    committed row, and a job that is no longer running is left alone. A cancel from the console
    stops it between batches (imports.pipeline.run), and the job stays cancelled."""
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None or job.status != ImportJob.Status.RUNNING:
        return None
    pipeline = contacts_import if job.target == ImportJob.Target.CONTACTS else portal_users
    try:
        pipeline.apply(job, batch_size=batch_size or pipeline.BATCH_SIZE)
    except Cancelled:
        logger.info("Import job %s cancelled", job_id)
    except (CsvError, MappingError) as error:
        logger.info("Import job %s stopped: %s", job_id, error)  # apply marked it failed
    return ImportJob.objects.filter(pk=job_id).values_list("status", flat=True).first()


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
        # The names are cleared, not only the files: storage hands a freed name to the next
        # upload, and a stale name would then serve that (maybe another account's) file.
        ImportJob.objects.filter(pk=job.pk).update(
            **dict.fromkeys(FILE_FIELDS, ""),
            files_deleted_at=timezone.now(),
            failure_reason_counts=reasons,
        )
    logger.info("Import job %s: files deleted after the retention period", job_id)
    return 1
