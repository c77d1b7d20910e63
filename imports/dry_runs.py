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

Every failed row is also written to the dry run's own failure file (the same columns as the
import's), so a technician can fix the file from the review without importing anything. It sits
next to the job's result files, named for the dry run; a newer dry run, the import's file
retention and discarding the draft delete it.
"""

import csv
import dataclasses
import os
from contextlib import contextmanager

from django.db import transaction
from django.utils import timezone

from helpers.spreadsheet_safety import neutralise_row
from imports import contacts_import, portal_users, result_files
from imports.column_mapping import MappingError
from imports.csv_reader import CsvError
from imports.models import ImportJob
from imports.pipeline import dry_run_failures

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

    # The files of earlier dry runs go: this one replaces them (one still running stops at its
    # next batch and deletes its own).
    delete_files(job)
    failure_file = _failure_file_name(job, token)
    kept = False  # the failure file stays only with the report it belongs to
    try:
        with _failure_file(job, failure_file):
            result = pipeline_of(job).validate(
                job,
                job.portal_account,
                job.column_mapping or None,
                job.dry_run["options"],
                progress=progress,
            )
    except _Superseded:
        pass
    except CsvError as error:
        update(job_id, token, state=FAILED, error=error.message)
    except MappingError as error:
        update(job_id, token, state=FAILED, error=" ".join(error.messages))
    except OSError:
        update(job_id, token, state=FAILED, error=MISSING_FILE)
    else:
        kept = update(
            job_id,
            token,
            state=DONE,
            checked=result.total_rows,
            report=dataclasses.asdict(result),
            finished_at=timezone.now().isoformat(),
            failure_file=failure_file,
        )
    if not kept:
        job.source_file.storage.delete(failure_file)


def _folder(job):
    """A folder per job: deleting a job's files lists only its own."""
    return f"imports/dry-runs/job-{job.pk}"


def _failure_file_name(job, token):
    return f"{_folder(job)}/{token}-failures.csv"


@contextmanager
def _failure_file(job, name):
    """Every failed row of the dry run written to a CSV file (UTF-8 with a byte-order mark,
    each cell neutralised, as imports.result_files writes the import's) at storage name
    `name`. Rows are written as the dry run finds them, never held in memory."""
    path = job.source_file.storage.path(name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    contacts = job.target == ImportJob.Target.CONTACTS
    header = contacts_import.FAILURE_HEADER if contacts else result_files.FAILURE_HEADER
    with open(path, "w", encoding="utf-8", newline="") as text:
        text.write("\ufeff")  # the byte-order mark makes Excel read UTF-8
        writer = csv.writer(text)
        writer.writerow(header)

        def write(line, values, failure):
            if contacts:
                cells = [values.get(field.name, "") for field in contacts_import.FIELDS]
            else:
                cells = [values.get("contact_id", ""), values.get("role", "")]
            writer.writerow(neutralise_row([line, *cells, failure.code, failure.reason]))

        reset = dry_run_failures.set(write)
        try:
            yield name
        finally:
            dry_run_failures.reset(reset)


def failure_file_name(job):
    """The storage name of the finished dry run's failure file, or "" if there is none."""
    if job.dry_run.get("state") != DONE:
        return ""
    name = job.dry_run.get("failure_file", "")
    return name if name.startswith(f"{_folder(job)}/") else ""


def delete_files(job):
    """Delete the job's dry-run failure files (a file already gone is fine)."""
    storage = job.source_file.storage
    folder = _folder(job)
    try:
        names = storage.listdir(folder)[1]
    except (FileNotFoundError, NotImplementedError):
        return
    for name in names:
        storage.delete(f"{folder}/{name}")


def update(job_id, token, **changes):
    """Merge `changes` into the job's dry run if it is still the dry run `token`."""
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().filter(pk=job_id).only("dry_run").first()
        if job is None or job.dry_run.get("token") != token:
            return False
        job.dry_run = {**job.dry_run, **changes}
        job.save(update_fields=["dry_run"])
    return True
