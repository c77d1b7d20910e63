"""Counting for operations.metrics where things happen, without the code that makes them happen
knowing: Django's post_save of outbox rows, the mail app's own signals, Celery's task signals.

- queued: a row created on its own (mail.outbox.queue_email), once the transaction that wrote it
  commits: a change rolled back after its email was written sends nothing, and counts nothing.
  Rows written in bulk (a bulk invite, an import: one INSERT, no post_save) count when their
  transaction commits too (mail.outbox.queued_in_bulk).
- sent: saved as sent with its sent_at (mail.delivery), or sent by the batch sender
  (mail.batches.outbox_counted).
- failed: saved with a new error and one more attempt (every failed attempt).
- deferred: only its next_attempt_at saved (a later turn in the account's sending pace), or
  deferred by the batch sender.
"""

import time

from celery.signals import task_postrun, task_prerun
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts.models import OutboxEmail
from mail.batches import outbox_counted
from mail.outbox import queued_in_bulk
from operations import metrics

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
    if counter is None:
        return
    child = counter.labels(kind=str(instance.kind))
    if counter is metrics.EMAILS_QUEUED:
        transaction.on_commit(child.inc)
    else:
        child.inc()


_BATCH_COUNTERS = {"sent": metrics.EMAILS_SENT, "deferred": metrics.EMAILS_DEFERRED}


@receiver(outbox_counted, dispatch_uid="operations.count_outbox_batch")
def _outbox_batch_counted(sender, outcome, kinds, **kwargs):
    for kind, count in kinds.items():
        _BATCH_COUNTERS[outcome].labels(kind=kind).inc(count)


@receiver(queued_in_bulk, dispatch_uid="operations.count_bulk_queued")
def _count_bulk_queued(sender, kinds, **kwargs):
    for kind, count in kinds.items():
        metrics.EMAILS_QUEUED.labels(kind=kind).inc(count)


@task_prerun.connect(dispatch_uid="operations.task_started")
def _task_started(task_id=None, task=None, args=None, **kwargs):
    _started[task_id] = time.perf_counter()


@task_postrun.connect(dispatch_uid="operations.task_finished")
def _task_finished(task_id=None, task=None, state=None, **kwargs):
    started = _started.pop(task_id, None)
    if started is None or task is None:
        return
    metrics.TASK_SECONDS.labels(task=task.name, state=state or "UNKNOWN").observe(
        time.perf_counter() - started
    )
