"""The review step's dry run (every row checked as the import would, nothing written), kept on
the job (`ImportJob.dry_run`) so that the review page survives a reload.

A small file is checked in the request, as before: up to INLINE_MAX_BYTES it takes well under a
second. A bigger one (a 50 MB file is about 1.5 million rows, half a minute) is checked by a
Celery worker (`imports.tasks.dry_run`; `imports.tasks.start_dry_run` decides which) while the
review page polls the job with HTMX, as the import's progress page does; without JavaScript the
page has a Refresh button. In the embedded demo and the tests, Celery runs the task at once.

Each dry run has a token. The worker writes its progress and its result only while the job's dry
run is still the one it was started for, so a newer dry run (other options, "Check again") makes
an older one stop at its next batch instead of overwriting the page.
"""

import dataclasses

from django.db import transaction
from django.utils import timezone

from imports import contacts_import, portal_users
from imports.column_mapping import MappingError
from imports.csv_reader import CsvError
from imports.models import ImportJob

INLINE_MAX_BYTES = 1024 * 1024  # about 30,000 portal-user rows: half a second

RUNNING, DONE, FAILED = "running", "done", "failed"
MISSING_FILE = "The uploaded file is no longer on the server. Upload it again."


def pipeline_of(job):
    """The validate/apply module of the job's target."""
    return contacts_import if job.target == ImportJob.Target.CONTACTS else portal_users


def is_current(job, options):
    """Whether the job has a dry run with these options that is under way or done."""
    return job.dry_run.get("options") == options and job.dry_run.get("state") in (RUNNING, DONE)


def report(job):
    """The finished dry run's report (the target's ValidationReport), or None."""
    data = job.dry_run.get("report") if job.dry_run.get("state") == DONE else None
    if not data:
        return None
    report_class = pipeline_of(job).ValidationReport
    # A report kept from an older version may have fields this one no longer has (the
    # portal-user import's single user type, before roles had types): they are left out.
    known = {field.name for field in dataclasses.fields(report_class)}
    return report_class(**{name: value for name, value in data.items() if name in known})


class _Superseded(Exception):
    """A newer dry run replaced this one."""


def run(job_id, token):
    """Do the dry run `token` of job `job_id` (in the worker or, for a small file, in the
    request) and keep its report or error on the job, unless a newer one replaced it."""
    job = ImportJob.objects.select_related("portal_account").filter(pk=job_id).first()
    if job is None or job.dry_run.get("token") != token:
        return

    def progress(checked):
        if not update(job_id, token, checked=checked):
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
        update(job_id, token, state=FAILED, error=error.message)
    except MappingError as error:
        update(job_id, token, state=FAILED, error=" ".join(error.messages))
    except OSError:
        update(job_id, token, state=FAILED, error=MISSING_FILE)
    else:
        update(
            job_id,
            token,
            state=DONE,
            checked=result.total_rows,
            report=dataclasses.asdict(result),
            finished_at=timezone.now().isoformat(),
        )


def update(job_id, token, **changes):
    """Merge `changes` into the job's dry run if it is still the dry run `token`."""
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().filter(pk=job_id).only("dry_run").first()
        if job is None or job.dry_run.get("token") != token:
            return False
        job.dry_run = {**job.dry_run, **changes}
        job.save(update_fields=["dry_run"])
    return True
