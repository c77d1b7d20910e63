"""Prometheus metrics, served at /metrics (operations.views.metrics).

Two kinds:
- Counters and histograms kept by the processes that see the events (requests in gunicorn's
  workers, emails and task durations in Celery's). With PROMETHEUS_MULTIPROC_DIR set (`run.py
  production` sets it for all its processes) prometheus_client keeps them in files there and a
  scrape adds every process up, dead ones included, so counters never go backwards when a
  gunicorn worker is recycled.
- Figures read from the database at scrape time (DatabaseCollector): the outbox backlog and the
  age of its oldest row, failed emails, import rows, refused sign-ins, heartbeat ages. They are
  the same whichever process answers, and cost the index-backed queries in operations.figures.
"""

import os

from django.utils import timezone
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from operations import figures
from operations.models import Heartbeat

PREFIX = "portal_admin"
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

REQUEST_SECONDS = Histogram(
    f"{PREFIX}_http_request_duration_seconds",
    "Time to answer a request, by view (its URL name), method and status.",
    ["view", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
EMAILS_QUEUED = Counter(
    f"{PREFIX}_emails_queued", "Outbox emails queued (committed), by kind.", ["kind"]
)
EMAILS_SENT = Counter(f"{PREFIX}_emails_sent", "Outbox emails sent, by kind.", ["kind"])
EMAILS_FAILED = Counter(
    f"{PREFIX}_emails_failed",
    "Failed attempts to send an outbox email, by kind (retried until OUTBOX_MAX_ATTEMPTS).",
    ["kind"],
)
EMAILS_DEFERRED = Counter(
    f"{PREFIX}_emails_deferred",
    "Outbox emails put off to a later turn by the per-account sending pace, by kind.",
    ["kind"],
)
TASK_SECONDS = Histogram(
    f"{PREFIX}_celery_task_duration_seconds",
    "Time a Celery task ran, by task and outcome (SUCCESS, RETRY, FAILURE...).",
    ["task", "state"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)


def observe_request(view, method, status, seconds):
    method = method if method in METHODS else "other"
    REQUEST_SECONDS.labels(view=view, method=method, status=str(status)).observe(seconds)


class DatabaseCollector:
    """Gauges and counters computed from the database when Prometheus scrapes."""

    def describe(self):
        # Nothing to check for name clashes at registration; collect() queries the database.
        return []

    def collect(self):
        now = timezone.now()
        yield _gauge(
            "outbox_backlog",
            f"Outbox emails waiting to be sent (counted up to {figures.COUNT_LIMIT}).",
            figures.outbox_backlog(),
        )
        yield _gauge(
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest outbox email still waiting to be sent (0: none waits).",
            figures.age_seconds(figures.oldest_pending_created_at(), now),
        )
        yield _gauge(
            "outbox_failed",
            "Outbox emails given up on, waiting for a retry from the System page.",
            figures.outbox_failed(),
        )
        applied = CounterMetricFamily(
            f"{PREFIX}_import_rows_applied",
            "CSV import rows applied, by import target.",
            labels=["target"],
        )
        failed = CounterMetricFamily(
            f"{PREFIX}_import_rows_failed",
            "CSV import rows that failed (they are in the import's failure file), by target.",
            labels=["target"],
        )
        for target, rows in sorted(figures.import_rows().items()):
            applied.add_metric([target], rows["applied"])
            failed.add_metric([target], rows["failed"])
        yield applied
        yield failed
        yield _gauge("imports_running", "CSV imports running now.", figures.running_import_count())
        refused = figures.refused_sign_ins(now)
        minutes = int(figures.SIGN_IN_WINDOW.total_seconds() // 60)
        for action, name, words in (
            ("sign_in_failed", "sign_in_failures_recent", "Failed sign-ins"),
            ("sign_in_locked_out", "sign_in_lockouts_recent", "Sign-ins refused by a lockout"),
        ):
            family = GaugeMetricFamily(
                f"{PREFIX}_{name}",
                f"{words} in the last {minutes} minutes, by door.",
                labels=["door"],
            )
            for (event, door), count in sorted(refused.items()):
                if event == action:
                    family.add_metric([door], count)
            yield family
        ages = GaugeMetricFamily(
            f"{PREFIX}_heartbeat_age_seconds",
            "Seconds since each Celery worker and beat last said it was alive (running ones).",
            labels=["kind", "name"],
        )
        for beat in Heartbeat.objects.filter(stopped_at__isnull=True):
            ages.add_metric([beat.kind, beat.name], figures.age_seconds(beat.seen_at, now))
        yield ages


def _gauge(name, documentation, value):
    return GaugeMetricFamily(f"{PREFIX}_{name}", documentation, value=value)


class _ThisProcess:
    """The default registry, as one collector of a scrape's registry (no multiprocess dir:
    the demo, tests, a single process)."""

    def collect(self):
        return REGISTRY.collect()


def exposition():
    """(body, content type) of one scrape."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(DatabaseCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST
