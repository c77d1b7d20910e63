"""The worker's side of webhooks: `deliver_due` sends the due deliveries, woken when a change
that wrote some commits (webhooks.events.wake_on_commit); beat's `sweep_webhooks` wakes it for
retries that came due and deliveries whose hand-over was lost (broker down, worker killed);
`delete_old_deliveries` (daily) keeps the log to WEBHOOKS_RETENTION_DAYS."""

import logging
import time
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from webhooks import delivery
from webhooks.models import Delivery

log = logging.getLogger(__name__)
BATCH = 50
# A drain hands the rest to a fresh task after this long, so the worker runs others' tasks.
DRAIN_SECONDS = 20


@shared_task(bind=True, acks_late=True)
def deliver_due(self):
    started = time.monotonic()
    sent = 0
    while ids := delivery.claim_due(BATCH):
        for delivery_id in ids:
            delivery.send(delivery_id)
            sent += 1
        if not self.request.is_eager and time.monotonic() - started > DRAIN_SECONDS:
            wake()
            break
    return sent


def wake():
    """Have a worker send what is due; if the broker will not take the task, the sweep will."""
    try:
        deliver_due.apply_async()
    except Exception as error:
        log.warning("Webhook deliveries left for the sweep: %s", error)


@shared_task
def sweep_webhooks():
    due = delivery.next_due()
    if due is not None and due <= timezone.now():
        wake()
        return True
    return False


@shared_task
def delete_old_deliveries():
    kept = timezone.now() - timedelta(days=settings.WEBHOOKS_RETENTION_DAYS)
    old = Delivery.objects.filter(
        status__in=[Delivery.Status.DELIVERED, Delivery.Status.FAILED], created_at__lt=kept
    )
    # In slices: a first run over a long history must not hold one huge DELETE.
    ids = list(old.values_list("id", flat=True)[:5000])
    if ids:
        Delivery.objects.filter(pk__in=ids).delete()
    return len(ids)
