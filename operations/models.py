from django.db import models


class Heartbeat(models.Model):
    """A Celery worker or beat saying it is alive (operations.heartbeats): one row per process,
    written every few seconds, which the health checks and the System page read."""

    class Kind(models.TextChoices):
        WORKER = "worker", "Celery worker"
        BEAT = "beat", "Celery beat"

    # The worker's node name (celery@host) or beat@host.
    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    pid = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField(db_index=True)
    # Set when the process said goodbye (a warm shutdown); a process that died just stops
    # being seen.
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["kind", "name"]

    def __str__(self):
        return f"{self.get_kind_display()} {self.name}"


class RetentionRun(models.Model):
    """One run of operations.retention.apply that deleted (dry runs are not kept): when, and
    how many rows of each kind went. The System page shows the newest; one row a day."""

    class Source(models.TextChoices):
        BEAT = "beat", "the daily beat task"
        COMMAND = "command", "manage.py apply_retention"

    source = models.CharField(max_length=10, choices=Source.choices)
    started_at = models.DateTimeField(db_index=True)
    # Empty while it runs, and for ever if its process died mid-run.
    finished_at = models.DateTimeField(null=True, blank=True)
    # {kind: rows deleted, or None where that kind failed (its error is in the log)}.
    counts = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]

    def __str__(self):
        return f"Retention run {self.started_at:%Y-%m-%d %H:%M} ({self.source})"
