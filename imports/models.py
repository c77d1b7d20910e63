from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


def stall_cutoff():
    """A running job whose progress is older than this has stalled: its worker died or hangs
    (imports.tasks.resume_stalled_imports hands it to another)."""
    return timezone.now() - timedelta(minutes=settings.IMPORT_STALL_MINUTES)


class ImportJob(models.Model):
    """One CSV import: the uploaded file, how its columns map, the options it runs with, where
    it got to (so a killed worker resumes) and the result files people download."""

    class Target(models.TextChoices):
        PORTAL_USERS = "portal_users", "Portal users"
        CONTACTS = "contacts", "Contacts"

    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded"
        MAPPED = "mapped", "Mapped"
        VALIDATED = "validated", "Validated"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    portal_account = models.ForeignKey(
        "accounts.PortalAccount", on_delete=models.CASCADE, related_name="import_jobs"
    )
    target = models.CharField(max_length=20, choices=Target.choices, default=Target.PORTAL_USERS)
    source_file = models.FileField(upload_to="imports/%Y/%m/")
    original_filename = models.CharField(max_length=255, blank=True)
    # {field name: 0-based column index or None}, see imports.column_mapping.
    column_mapping = models.JSONField(default=dict, blank=True)
    # {"send_activation": bool}; each row's role decides its user type
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.UPLOADED)

    total_rows = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    # The physical line of the last row whose outcome is committed: a resumed run starts after it.
    last_processed_line = models.PositiveIntegerField(default=0)
    # How much of each result file belongs to committed batches; a resumed run cuts the files
    # back to these sizes, so a batch that was rolled back leaves no rows in them.
    success_file_bytes = models.PositiveBigIntegerField(default=0)
    failure_file_bytes = models.PositiveBigIntegerField(default=0)

    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="import_jobs",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error_message = models.TextField(blank=True)
    # The heartbeat of a run: set when a run claims the job and with every committed batch. A
    # running job whose heartbeat is older than IMPORT_STALL_MINUTES has stalled (its worker was
    # killed, or its task was lost with the broker) and is resumed (imports.tasks).
    progress_at = models.DateTimeField(null=True, blank=True)
    # Who may write the job's rows: the token of the run that holds it, or the ticket a queued
    # task carries to claim it. A run swaps the ticket it was given for a token of its own, and
    # every write of a run (each batch, done, failed) is conditional on that token, so a run
    # that was given up on (a slow or paused worker) can never write once another took over.
    run_token = models.CharField(max_length=32, blank=True)
    # How many times the job was resumed since its last committed batch: a job that kills its
    # worker every time is failed after a few tries instead of being resumed for ever.
    stall_count = models.PositiveSmallIntegerField(default=0)

    # The review step's dry run, kept so that the page survives a reload while a worker checks a
    # big file (imports.dry_runs): {"token", "options", "state", "checked", "report", "error",
    # "started_at", "finished_at"}; empty until the review page first asks for it.
    dry_run = models.JSONField(default=dict, blank=True)

    success_file = models.FileField(upload_to="imports/results/", blank=True)
    failure_file = models.FileField(upload_to="imports/results/", blank=True)
    # Set when the retention sweep (imports.tasks.delete_expired_import_files) deleted the
    # three files above after IMPORT_FILE_RETENTION_DAYS; the row and its counts stay.
    files_deleted_at = models.DateTimeField(null=True, blank=True)
    # Failures per reason code, kept by that sweep: until then the job page counts them from
    # the failure file it deletes.
    failure_reason_counts = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        name = self.original_filename or self.source_file.name
        return f"{self.get_target_display()} import {name} ({self.get_status_display()})"

    @property
    def heartbeat(self):
        return self.progress_at or self.started_at or self.created_at

    @property
    def is_stalled(self):
        return self.status == self.Status.RUNNING and self.heartbeat < stall_cutoff()
