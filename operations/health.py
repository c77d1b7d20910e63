"""The health checks: /health/ asks the database only; /health/ready/ and the System page ask
them all. Each answers in words a person can act on, and none takes longer than its timeout."""

import time
from dataclasses import dataclass

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from operations import figures
from operations.models import Heartbeat

REDIS_TIMEOUT_SECONDS = 1
REDIS_CACHE_BACKENDS = ("django.core.cache.backends.redis.RedisCache",)


@dataclass(frozen=True)
class Check:
    name: str
    title: str
    ok: bool
    detail: str


def _ms(started):
    ms = (time.perf_counter() - started) * 1000
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms"


def duration(seconds):
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def ago(seconds):
    return f"{duration(seconds)} ago"


def _no_broker():
    return settings.CELERY_TASK_ALWAYS_EAGER


def database():
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:
        return Check("database", "Database", False, f"Does not answer: {type(error).__name__}.")
    return Check("database", "Database", True, f"Answered in {_ms(started)}.")


def redis_check():
    """The broker (when it is Redis) and the cache (when it is Redis): both must answer."""
    answered, problems = [], []
    started = time.perf_counter()
    broker = settings.CELERY_BROKER_URL
    if not _no_broker() and broker.startswith(("redis://", "rediss://")):
        try:
            client = redis.Redis.from_url(
                broker,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
            )
            try:
                client.ping()
            finally:
                client.close()
            answered.append("the broker")
        except Exception as error:
            problems.append(f"the broker does not answer ({type(error).__name__})")
    if settings.CACHES["default"]["BACKEND"] in REDIS_CACHE_BACKENDS:
        try:
            cache.set("operations:ready", "1", timeout=10)
            answered.append("the cache")
        except Exception as error:
            problems.append(f"the cache does not answer ({type(error).__name__})")
    if problems:
        return Check("redis", "Redis", False, "; ".join(problems).capitalize() + ".")
    if not answered:
        return Check("redis", "Redis", True, "Not used: no broker and a per-process cache.")
    return Check(
        "redis", "Redis", True, f"{' and '.join(answered).capitalize()} answered in {_ms(started)}."
    )


def _heartbeats(kind, max_age, now):
    rows = list(Heartbeat.objects.filter(kind=kind).order_by("-seen_at"))
    alive = [
        row
        for row in rows
        if row.stopped_at is None and figures.age_seconds(row.seen_at, now) <= max_age
    ]
    return rows, alive


def worker(now=None):
    if _no_broker():
        return Check("worker", "Celery worker", True, "Not used: tasks run in the web process.")
    now = now or timezone.now()
    max_age = settings.HEALTH_WORKER_MAX_AGE_SECONDS
    rows, alive = _heartbeats(Heartbeat.Kind.WORKER, max_age, now)
    if alive:
        newest = figures.age_seconds(alive[0].seen_at, now)
        count = f"{len(alive)} worker{'s' if len(alive) != 1 else ''}"
        return Check(
            "worker", "Celery worker", True, f"{count} alive; last heartbeat {ago(newest)}."
        )
    detail = f"No worker has sent a heartbeat in the last {max_age} s"
    if rows:
        last = rows[0]
        detail += f"; the last one, {last.name}, was seen {ago(_age(last, now))}"
        if last.stopped_at:
            detail += " and shut down"
    return Check("worker", "Celery worker", False, detail + ". Emails and imports wait.")


def _age(row, now):
    return figures.age_seconds(row.seen_at, now)


def beat(now=None):
    if _no_broker():
        return Check("beat", "Celery beat", True, "Not used: no broker.")
    now = now or timezone.now()
    max_age = settings.HEALTH_BEAT_MAX_AGE_SECONDS
    rows, alive = _heartbeats(Heartbeat.Kind.BEAT, max_age, now)
    if alive:
        return Check(
            "beat", "Celery beat", True, f"Ran {ago(_age(alive[0], now))} ({alive[0].name})."
        )
    detail = f"Has not run in the last {max_age} s"
    if rows:
        detail += f" (last seen {ago(_age(rows[0], now))})"
    return Check(
        "beat",
        "Celery beat",
        False,
        detail + ". Unsent emails are not re-queued and stalled imports not resumed.",
    )


def outbox(now=None):
    now = now or timezone.now()
    limit = settings.HEALTH_OUTBOX_MAX_AGE_MINUTES * 60
    oldest = figures.oldest_pending_created_at()
    if oldest is None:
        return Check("outbox", "Outbox", True, "No email is waiting.")
    age = figures.age_seconds(oldest, now)
    waiting = figures.outbox_backlog()
    many = f"{waiting}{'+' if waiting >= figures.COUNT_LIMIT else ''}"
    detail = f"{many} email{'s' if waiting != 1 else ''} waiting; the oldest was queued {ago(age)}"
    if age > limit:
        limit_minutes = settings.HEALTH_OUTBOX_MAX_AGE_MINUTES
        return Check("outbox", "Outbox", False, f"{detail}, over the {limit_minutes} min allowed.")
    return Check("outbox", "Outbox", True, detail + ".")


CHECKS = (
    ("database", "Database", database),
    ("redis", "Redis", redis_check),
    ("worker", "Celery worker", worker),
    ("beat", "Celery beat", beat),
    ("outbox", "Outbox", outbox),
)


def readiness():
    """Every check, in order; one that cannot run (the database is gone) fails with why."""
    results = []
    for name, title, check in CHECKS:
        try:
            results.append(check())
        except Exception as error:
            results.append(
                Check(name, title, False, f"Could not be checked: {type(error).__name__}.")
            )
    return results
