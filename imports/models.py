from django.conf import settings
from django.db import models


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
    # {"send_activation": bool, "user_type": "partner" | "customer" | "employee"}
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
