"""The Celery tasks that deliver the outbox, and the hand-off of rows to them (mail/outbox.py
queues a row; these send it through mail/delivery.py).

Each email goes to the queue of its kind: "urgent" for one a person is waiting for (a sign-in
link or code, a password reset, an invitation asked for again, a new address to confirm),
"bulk" for the rest (invitations, from a bulk invite or the CSV import above all). The sweep
runs in "maintenance" (settings.CELERY_TASK_ROUTES)."""

import logging

from celery import shared_task
from celery.signals import worker_process_shutdown, worker_shutdown
from django.conf import settings
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from accounts.models import EmailKind, OutboxEmail
from mail import delivery
from portal_admin.celery import BrokerUnavailable

log = logging.getLogger(__name__)

URGENT, BULK = "urgent", "bulk"
URGENT_KINDS = {
    EmailKind.LOGIN_LINK,
    EmailKind.LOGIN_CODE,
    EmailKind.PASSWORD_RESET,
    # The portal sends it to an invited person who asks for a sign-in link; the console, to one
    # person at a time (a bulk reinvite is at most BULK_ACTION_MAX_USERS, paced per account).
    EmailKind.REINVITATION,
    EmailKind.EMAIL_CHANGE_CONFIRM,
}


def queue_for(kind):
    return URGENT if kind in URGENT_KINDS else BULK


@shared_task(bind=True, max_retries=None, acks_late=True)
def send_outbox_email(self, row_id, slot=None):
    # Eagerly run tasks (no broker: the embedded demo) have nobody to run them later: no pace
    # there, and a failed row stays pending for the sweep instead of retrying at once in a loop.
    eager = self.request.is_eager
    try:
        return delivery.deliver(row_id, pace=not eager, slot=slot)
    except delivery.SendDeferred as deferred:
        # The task comes back at its turn, carrying its reservation. Until then Celery keeps it
        # aside (a task with a countdown occupies no process of the pool): no worker sleeps on
        # it, and the emails of other accounts go ahead.
        raise self.retry(
            args=(row_id,),
            kwargs={"slot": deferred.slot},
            countdown=deferred.countdown,
            exc=None,
        ) from None
    except delivery.SendFailed as failure:
        if failure.final or eager:
            return False
        raise self.retry(args=(row_id,), kwargs={}, countdown=failure.retry_in, exc=None) from None


@shared_task(acks_late=True)
def hand_out_emails(row_ids):
    """The worker's half of `hand_many_to_celery`. Run twice (a worker killed part-way),
    a row gets two tasks; sending stays at most once per row (`deliver` locks it and checks its
    status)."""
    for row_id in row_ids:
        if hand_to_celery(row_id) is False:
            break  # the broker failed: the rest wait for the sweep as well


@shared_task
def requeue_unsent_emails():
    return len(requeue_unsent())


def hand_to_celery(row_id):
    """Queue the row's task on its kind's queue. Returns whether the broker took it; if not
    (down, or hung: that costs at most settings.REDIS_TIMEOUT_SECONDS), the row stays pending
    and the sweep re-queues it."""
    kind = OutboxEmail.objects.filter(pk=row_id).values_list("kind", flat=True).first()
    try:
        send_outbox_email.apply_async((row_id,), queue=queue_for(kind))
    except BrokerUnavailable as error:  # the failure itself was logged moments ago
        log.warning("Outbox email %s left for the sweep: %s", row_id, error)
        return False
    except Exception:
        log.exception("Could not queue outbox email %s; the sweep will retry it", row_id)
        return False
    return True


def hand_many_to_celery(row_ids):
    """Hand many rows to Celery with one message (a bulk invite, the CSV import): a worker then
    gives each row its own task (`hand_out_emails`), paced like any other. Publishing costs about
    half a millisecond a message with Redis, so a 10,000-row import handing its rows one by one
    spent 5 s on it before the next batch could start. Broker down: as `hand_to_celery`, the
    rows stay pending and the sweep re-queues them."""
    row_ids = list(row_ids)
    if len(row_ids) <= 1:
        for row_id in row_ids:
            hand_to_celery(row_id)
        return
    try:
        hand_out_emails.delay(row_ids)  # to the "bulk" queue (settings.CELERY_TASK_ROUTES)
    except Exception:
        log.exception("Could not queue %s outbox emails; the sweep will retry them", len(row_ids))


def requeue_unsent():
    """Hand Celery again every pending row that has waited too long since it was queued or
    since its next attempt (a retry after a failure, its turn in the pace) was due: the broker
    was down, or a worker died holding its task. Returns the ids."""
    now = timezone.now()
    # Counting from the due time, not only from the queue time, leaves a row of a long pace
    # backlog, or one whose retry is just due, to the task that is about to run it.
    cutoff = now - settings.OUTBOX_REQUEUE_AFTER
    due = Greatest("queued_at", Coalesce("next_attempt_at", "queued_at"))
    stale = OutboxEmail.objects.alias(due=due).filter(
        # The first condition follows from the second; it lets the (status, queued_at) index
        # do the work.
        status=OutboxEmail.Status.PENDING,
        queued_at__lt=cutoff,
        due__lt=cutoff,
    )
    ids = list(stale.values_list("pk", flat=True)[:5000])
    OutboxEmail.objects.filter(pk__in=ids).update(queued_at=now)
    for row_id in ids:
        if hand_to_celery(row_id) is False:
            break  # the broker failed: the next sweep tries the rest again
    return ids


@worker_process_shutdown.connect
@worker_shutdown.connect
def _close_mail_session(**kwargs):
    # A polite QUIT, rather than a dropped connection in the mail server's log.
    delivery.mail_session.close()
