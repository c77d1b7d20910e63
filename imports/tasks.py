"""The browser import runs here, in a Celery worker (in-process when there is no broker)."""

import logging

from celery import shared_task

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
