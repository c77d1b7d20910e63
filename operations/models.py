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
