"""The browser import runs here, in a Celery worker (in-process when there is no broker)."""

import logging
import secrets

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from imports import contacts_import, dry_runs, portal_users
from imports.column_mapping import MappingError
from imports.csv_reader import CsvError
from imports.models import ImportJob
from imports.pipeline import Cancelled

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
