"""The review step's dry run (every row checked as the import would, nothing written), kept on
the job (`ImportJob.dry_run`) so that the review page survives a reload.

A small file is checked in the request, as before: up to INLINE_MAX_BYTES it takes well under a
second. A bigger one (a 50 MB file is about 1.5 million rows, half a minute) is checked by a
Celery worker (`imports.tasks.dry_run`) while the review page polls the job with HTMX, as the
import's progress page does; without JavaScript the page has a Refresh button. In the embedded
demo and the tests, Celery runs the task at once.

Each dry run has a token. The worker writes its progress and its result only while the job's dry
run is still the one it was started for, so a newer dry run (other options, "Check again") makes
an older one stop at its next batch instead of overwriting the page.
"""

import dataclasses
import logging
import secrets

from django.db import transaction
from django.utils import timezone

from imports import contacts_import, portal_users
from imports.column_mapping import MappingError
from imports.csv_reader import CsvError
from imports.models import ImportJob

logger = logging.getLogger(__name__)

INLINE_MAX_BYTES = 1024 * 1024  # about 30,000 portal-user rows: half a second

RUNNING, DONE, FAILED = "running", "done", "failed"
MISSING_FILE = "The uploaded file is no longer on the server. Upload it again."


def pipeline_of(job):
    """The validate/apply module of the job's target."""
    return contacts_import if job.target == ImportJob.Target.CONTACTS else portal_users


def is_current(job, options):
    """Whether the job has a dry run with these options that is under way or done."""
    return job.dry_run.get("options") == options and job.dry_run.get("state") in (RUNNING, DONE)


def start(job, options):
    """Start a dry run of `job` with `options` (replacing any earlier one); returns its state.
    A small file is checked before this returns; a big one is queued once the transaction
    commits."""
    token = secrets.token_hex(8)
    state = {
        "token": token,
        "options": options,
        "state": RUNNING,
        "checked": 0,
        "started_at": timezone.now().isoformat(),
    }
    ImportJob.objects.filter(pk=job.pk).update(dry_run=state)
    job.dry_run = state
    if _file_size(job) <= INLINE_MAX_BYTES:
        run(job.pk, token)
    else:
        transaction.on_commit(lambda: _queue(job.pk, token))
    job.refresh_from_db()
    return job.dry_run


def report(job):
    """The finished dry run's report (the target's ValidationReport), or None."""
    data = job.dry_run.get("report") if job.dry_run.get("state") == DONE else None
    return pipeline_of(job).ValidationReport(**data) if data else None


def _file_size(job):
    try:
        return job.source_file.size
    except (OSError, ValueError):
        return 0  # checked in the request, which says the file is missing


def _queue(job_id, token):
    from imports.tasks import dry_run

    try:
        dry_run.delay(job_id, token)
    except Exception:  # broker unreachable: say so; "Check again" queues it again
        logger.exception("Could not queue the dry run of import job %s", job_id)
        _update(
            job_id,
            token,
            state=FAILED,
            error="The file could not be checked now (task queue unavailable). "
            "Check again in a minute.",
        )


class _Superseded(Exception):
    """A newer dry run replaced this one."""


def run(job_id, token):
    """Do the dry run `token` of job `job_id` (in the worker or, for a small file, in the
    request) and keep its report or error on the job, unless a newer one replaced it."""
    job = ImportJob.objects.select_related("portal_account").filter(pk=job_id).first()
    if job is None or job.dry_run.get("token") != token:
        return

    def progress(checked):
        if not _update(job_id, token, checked=checked):
            raise _Superseded

    try:
        result = pipeline_of(job).validate(
            job,
            job.portal_account,
            job.column_mapping or None,
            job.dry_run["options"],
            progress=progress,
        )
    except _Superseded:
        return
    except CsvError as error:
        _update(job_id, token, state=FAILED, error=error.message)
    except MappingError as error:
        _update(job_id, token, state=FAILED, error=" ".join(error.messages))
    except OSError:
        _update(job_id, token, state=FAILED, error=MISSING_FILE)
    else:
        _update(
            job_id,
            token,
            state=DONE,
            checked=result.total_rows,
            report=dataclasses.asdict(result),
            finished_at=timezone.now().isoformat(),
        )


def _update(job_id, token, **changes):
    """Merge `changes` into the job's dry run if it is still the dry run `token`."""
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().filter(pk=job_id).only("dry_run").first()
        if job is None or job.dry_run.get("token") != token:
            return False
        job.dry_run = {**job.dry_run, **changes}
        job.save(update_fields=["dry_run"])
    return True
