"""What the import targets' pipelines share: the file, the batches, the bookkeeping of a run
(resume after the last committed batch, progress, done or failed) and the dry-run report."""

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from imports.column_mapping import MappingError, row_values
from imports.csv_reader import CsvError
from imports.models import ImportJob

EXAMPLES_PER_REASON = 5


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


def max_bytes():
    return settings.IMPORT_MAX_BYTES


def batches(csv_file, mapping, batch_size):
    batch = []
    for line, cells in csv_file.rows():
        batch.append((line, row_values(mapping, cells)))
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


class Cancelled(Exception):
    """Someone cancelled the job (in the console) while it ran: the run stops, the batches
    committed before stay done, the batch in flight is rolled back."""


def _no_longer_running(job):
    """The error for a job whose status changed under the run: Cancelled if it was cancelled."""
    status = ImportJob.objects.filter(pk=job.pk).values_list("status", flat=True).first()
    if status == ImportJob.Status.CANCELLED:
        return Cancelled()
    return RuntimeError(f"Import job {job.pk} is no longer running (it is {status}).")


def stop_if_cancelled(job):
    """Between batches: stop before doing the next batch's work if the job was cancelled."""
    if ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.CANCELLED).exists():
        raise Cancelled


def save_progress(job):
    """Save the batch's counts, in the batch's transaction, only while the job is running: the
    UPDATE is conditional, so a cancel that committed first makes the batch roll back
    (Cancelled), and a cancel that comes later waits for this row lock and then applies."""
    counts = {name: getattr(job, name) for name in COUNT_FIELDS}
    if not ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.RUNNING).update(**counts):
        raise _no_longer_running(job)


def mark_failed(job, error):
    """The job failed (a bad file, an error): status, message and end time, unless it was
    cancelled meanwhile (the person's cancel is what they see)."""
    if isinstance(error, CsvError):
        message = error.message
    elif isinstance(error, MappingError):
        message = " ".join(error.messages)
    else:
        message = str(error) or error.__class__.__name__
    job.status = ImportJob.Status.FAILED
    job.error_message = message
    job.finished_at = timezone.now()
    ImportJob.objects.filter(pk=job.pk).exclude(status=ImportJob.Status.CANCELLED).update(
        status=job.status, error_message=job.error_message, finished_at=job.finished_at
    )


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
):
    """Apply `job`'s file a batch at a time, resuming after `job.last_processed_line`.

    Rows up to that line are only shown to the checker (duplicates still count); the rest go
    to `apply_batch(job, checker, batch, rows, results)`, which commits them with the job's
    counts (`save_progress`). `progress(job)` is called after each committed batch. A CsvError
    part-way through marks the job failed (rows before it stay done) and is raised.

    The run writes the job's status only with conditional UPDATEs, so a cancel from the console
    is never overwritten: starting claims the job only if it is still resumable, each batch
    saves its counts only while the job is running, and the job is done only if it was still
    running at the end. A cancelled job raises Cancelled (status left as the cancel set it).
    Returns the job."""
    job.refresh_from_db()  # the committed progress, not what a crashed caller held in memory
    if job.status == ImportJob.Status.CANCELLED:
        raise Cancelled
    if job.status not in RESUMABLE:
        raise ValueError(f"Import job {job.pk} is {job.get_status_display()}; it cannot run.")
    try:
        csv_file, mapping = open_and_map(job, job.column_mapping or None)
        if not job.total_rows:
            job.total_rows = sum(1 for _ in csv_file.rows())
        job.column_mapping = mapping
        job.options = normalise_options(job.options)
        job.status = ImportJob.Status.RUNNING
        job.started_at = job.started_at or timezone.now()
        job.error_message = ""
        claimed = ImportJob.objects.filter(pk=job.pk, status__in=RESUMABLE).update(
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
        with result_files(job) as results:
            job.save(update_fields=["success_file", "failure_file"])
            for rows in batches(csv_file, mapping, batch_size):
                batch = checker.load_batch(rows)
                todo = []
                for line, values in rows:
                    if line <= job.last_processed_line:
                        checker.mark_seen(line, values, batch)
                    else:
                        todo.append((line, values))
                if todo:
                    stop_if_cancelled(job)
                    apply_batch(job, checker, batch, todo, results)
                    if progress is not None:
                        progress(job)
        finished_at = timezone.now()
        if ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.RUNNING).update(
            status=ImportJob.Status.DONE, finished_at=finished_at
        ):
            job.status, job.finished_at = ImportJob.Status.DONE, finished_at
        else:
            raise _no_longer_running(job)
    except Cancelled:
        job.refresh_from_db()
        raise
    except Exception as error:
        job.refresh_from_db(fields=COUNT_FIELDS)  # a rolled-back batch counted in memory only
        mark_failed(job, error)
        raise
    finally:
        job.source_file.close()
    return job
