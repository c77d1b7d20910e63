from django.apps import AppConfig


class OperationsConfig(AppConfig):
    """Running Portal Admin in production: health checks, Prometheus metrics, the request id
    and log context, Celery worker and beat heartbeats, and the System page for MSSP staff. It
    reads the domain (outbox, imports, audit) and changes nothing of it but a failed email's
    retry; the domain never imports it."""

    name = "operations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from operations import (
            heartbeats,  # noqa: F401 - connects the worker's and beat's heartbeat receivers
            metric_hooks,  # noqa: F401 - connects the receivers that count emails and tasks
            task_context,  # noqa: F401 - carries the request id into Celery tasks
        )
        from portal_admin.celery import app

        heartbeats.schedule_beat_pulse(app)
