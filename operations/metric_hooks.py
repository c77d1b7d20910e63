"""Counting for operations.metrics where things happen, without the code that makes them happen
knowing: Django's post_save of outbox rows and Celery's task signals.

An outbox row counts when it is written. (Counting on commit would be exact for a change rolled
back after its email was written, but the lifecycle checks its rules before it queues, and an
on_commit callback per email is one more thing in every change's commit.)
- queued: a row created on its own (mail.outbox.queue_email). Rows written in bulk (a bulk
  invite: one INSERT, no signal) count when the worker hands them out (mail.tasks.hand_out_emails).
- sent: saved as sent with its sent_at (mail.delivery).
- failed: saved with a new error and one more attempt (every failed attempt).
- deferred: only its next_attempt_at saved (a later turn in the account's sending pace).
"""

import time

from celery.signals import task_postrun, task_prerun
from django.db.models import Count
from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts.models import OutboxEmail
from operations import metrics

BULK_HAND_OUT_TASK = "mail.tasks.hand_out_emails"
_Status = OutboxEmail.Status
_started = {}


def _counter_for(row, created, update_fields):
    if created:
        return metrics.EMAILS_QUEUED if row.status == _Status.PENDING else None
    fields = set(update_fields or ())
    if row.status == _Status.SENT and "sent_at" in fields:
        return metrics.EMAILS_SENT
    if {"attempts", "last_error"} <= fields and row.last_error:
        return metrics.EMAILS_FAILED
    if fields == {"next_attempt_at"} and row.status == _Status.PENDING:
        return metrics.EMAILS_DEFERRED
    return None


@receiver(post_save, sender=OutboxEmail, dispatch_uid="operations.count_outbox_row")
def _outbox_row_saved(sender, instance, created, update_fields=None, **kwargs):
    counter = _counter_for(instance, created, update_fields)
    if counter is not None:
        counter.labels(kind=str(instance.kind)).inc()


def _count_bulk_queued(row_ids):
    for start in range(0, len(row_ids), 5000):
        kinds = (
            OutboxEmail.objects.filter(pk__in=row_ids[start : start + 5000])
            .values("kind")
            .annotate(count=Count("pk"))
            .order_by()
        )
        for row in kinds:
            metrics.EMAILS_QUEUED.labels(kind=row["kind"]).inc(row["count"])


@task_prerun.connect(dispatch_uid="operations.task_started")
def _task_started(task_id=None, task=None, args=None, **kwargs):
    _started[task_id] = time.perf_counter()
    if task is not None and task.name == BULK_HAND_OUT_TASK and args:
        _count_bulk_queued(list(args[0]))


@task_postrun.connect(dispatch_uid="operations.task_finished")
def _task_finished(task_id=None, task=None, state=None, **kwargs):
    started = _started.pop(task_id, None)
    if started is None or task is None:
        return
    metrics.TASK_SECONDS.labels(task=task.name, state=state or "UNKNOWN").observe(
        time.perf_counter() - started
    )
