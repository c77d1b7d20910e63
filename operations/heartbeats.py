"""Celery's worker and beat say they are alive, in the database, where the health checks and the
System page read it.

A worker: Celery's own heartbeat (heartbeat_sent, every 2 s from the worker's main process while
it is connected to the broker), written at most every WRITE_EVERY_SECONDS, plus its start and
its warm shutdown. Beat: its start, and every task it publishes; operations.tasks.beat_pulse,
scheduled every BEAT_PULSE_SECONDS, makes sure it publishes that often.

A heartbeat that cannot be written (the database is down) is skipped: the process goes on, and
its row simply ages, which is what the checks then report."""

import atexit
import logging
import os
import socket
import time
from datetime import timedelta

from celery.signals import (
    beat_init,
    before_task_publish,
    heartbeat_sent,
    worker_ready,
    worker_shutdown,
)
from django.db import connection
from django.utils import timezone

from operations.models import Heartbeat

log = logging.getLogger(__name__)

WRITE_EVERY_SECONDS = 10
BEAT_PULSE_SECONDS = 30
# Rows of processes gone this long are dropped when a new process starts.
FORGET_AFTER_DAYS = 7

_last_write = {}
_beat_name = []


def record(name, kind, *, starting=False, stopping=False):
    """Insert or update the process's row in one statement."""
    now = timezone.now()
    row = Heartbeat(
        name=name[:200],
        kind=kind,
        pid=os.getpid(),
        started_at=now,
        seen_at=now,
        stopped_at=now if stopping else None,
    )
    update = ["kind", "pid", "seen_at", "stopped_at"] + (["started_at"] if starting else [])
    Heartbeat.objects.bulk_create(
        [row], update_conflicts=True, unique_fields=["name"], update_fields=update
    )
    if starting:
        Heartbeat.objects.filter(seen_at__lt=now - timedelta(days=FORGET_AFTER_DAYS)).delete()


def _safely_record(name, kind, **flags):
    try:
        record(name, kind, **flags)
    except Exception as error:
        log.warning("Could not record the heartbeat of %s: %s", name, error)
        # A connection broken under us (PostgreSQL restarted) is opened afresh next time.
        connection.close()
        return False
    _last_write[name] = time.monotonic()
    return True


def _due(name):
    return time.monotonic() - _last_write.get(name, float("-inf")) >= WRITE_EVERY_SECONDS


@worker_ready.connect(dispatch_uid="operations.worker_ready")
def _worker_started(sender, **kwargs):
    _safely_record(sender.hostname, Heartbeat.Kind.WORKER, starting=True)


@heartbeat_sent.connect(dispatch_uid="operations.worker_heartbeat")
def _worker_heartbeat(sender, **kwargs):
    name = sender.eventer.hostname
    if _due(name):
        _safely_record(name, Heartbeat.Kind.WORKER)


@worker_shutdown.connect(dispatch_uid="operations.worker_shutdown")
def _worker_stopped(sender, **kwargs):
    _safely_record(sender.hostname, Heartbeat.Kind.WORKER, stopping=True)


@beat_init.connect(dispatch_uid="operations.beat_init")
def _beat_started(sender, **kwargs):
    _beat_name[:] = [f"beat@{socket.gethostname()}"]
    _safely_record(_beat_name[0], Heartbeat.Kind.BEAT, starting=True)
    # Beat has no shutdown signal; on SIGTERM it syncs its schedule and exits through SystemExit.
    atexit.register(_safely_record, _beat_name[0], Heartbeat.Kind.BEAT, stopping=True)


@before_task_publish.connect(dispatch_uid="operations.beat_publishes")
def _beat_published(sender=None, **kwargs):
    # Every process publishes; only beat's publishing is its heartbeat.
    if _beat_name and _due(_beat_name[0]):
        _safely_record(_beat_name[0], Heartbeat.Kind.BEAT)


def schedule_beat_pulse(app):
    """Beat's schedule gets the pulse from here rather than from CELERY_BEAT_SCHEDULE, so that
    this app's one task stays with this app."""
    from operations.tasks import beat_pulse

    app.add_periodic_task(BEAT_PULSE_SECONDS, beat_pulse.s(), name="operations-beat-pulse")
