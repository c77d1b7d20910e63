"""The browser import runs here, in a Celery worker (in-process when there is no broker)."""

import logging

from celery import shared_task
from django.utils import timezone

from imports import contacts_import, portal_users
from imports.column_mapping import MappingError
from imports.csv_reader import CsvError
from imports.models import ImportJob

logger = logging.getLogger(__name__)


class ImportCancelled(Exception):
    """Raised between batches when someone cancelled the job: `apply` stops, the rows of the
    batches already committed stay done."""


def stop_if_cancelled(job):
    if ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.CANCELLED).exists():
        raise ImportCancelled


@shared_task(acks_late=True)
def run_import(job_id, batch_size=None):
    """Apply the import job `job_id`. Safe to run twice: `apply` resumes after the last
    committed row, and a job that is no longer running is left alone."""
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None or job.status != ImportJob.Status.RUNNING:
        return None
    pipeline = contacts_import if job.target == ImportJob.Target.CONTACTS else portal_users
    try:
        pipeline.apply(
            job, batch_size=batch_size or pipeline.BATCH_SIZE, progress=stop_if_cancelled
        )
    except ImportCancelled:
        # apply marked the job failed on its way out; it was cancelled.
        ImportJob.objects.filter(pk=job_id).update(
            status=ImportJob.Status.CANCELLED, error_message="", finished_at=timezone.now()
        )
    except (CsvError, MappingError) as error:
        logger.info("Import job %s stopped: %s", job_id, error)  # apply marked it failed
    return ImportJob.objects.filter(pk=job_id).values_list("status", flat=True).first()
