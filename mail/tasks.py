"""The Celery tasks that deliver the outbox, and the hand-off of rows to them (mail/outbox.py
queues a row; these send it).

Two lanes (accounts.models.outbox.URGENT_KINDS): "urgent" for an email a person is waiting for
(a sign-in link or code, a password reset, an invitation asked for again, a new address to
confirm), "bulk" for the rest (invitations, from a bulk invite or the CSV import above all).
Each lane is drained by `send_due_emails` on the Celery queue of its name: batches of due rows
(mail/batches.py) until none is due, the urgent lane's before each batch of the bulk lane, so
that not even a worker busy with a 10,000-invitation import keeps a sign-in code waiting for
more than a batch. A committed change wakes its rows' lanes (one task per lane and
transaction); a drain that leaves rows due later (the pace, a retry) wakes its lane at that
time. The sweep runs in "maintenance" (settings.CELERY_TASK_ROUTES).

With OUTBOX_SEND_IN_BATCHES off, each row has a task of its own (`send_outbox_email`,
mail/delivery.py), as before batches: the baseline of bench/emails.py."""

import logging
import math
import time

from celery import shared_task
from celery.signals import (
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Q
from django.urls import get_resolver
from django.utils import timezone

from accounts.models import OutboxEmail
from accounts.models.outbox import BULK, URGENT, URGENT_KINDS, lane_of
from accounts.models.outbox import LANES as OUTBOX_LANES
from mail import batches, delivery
from mail.sample_emails import send_sample_email
from portal_admin.celery import BrokerUnavailable

log = logging.getLogger(__name__)

# send_sample_email: imported so that the worker, which loads the tasks modules, knows it.
__all__ = ["BULK", "URGENT", "URGENT_KINDS", "queue_for", "send_sample_email"]
LANES = (URGENT, BULK)
# The rows a sweep re-queues at most (the next sweep takes the rest).
SWEEP_LIMIT = 5000


def queue_for(kind):
    return lane_of(kind)


@shared_task(bind=True, acks_late=True)
def send_due_emails(self, lane, wake_at=None):
    """Send the lane's due rows in batches. Returns how many rows it claimed."""
    # Run eagerly (no broker: the embedded demo, most tests) nobody runs a task later: no pace,
    # and no wake-up for rows due later (a retry waits for the sweep).
    eager = self.request.is_eager
    if wake_at is not None:
        _forget_wake_up(lane, wake_at)
    return drain(lane, pace=not eager, later=not eager)


def drain(lane, *, pace, later):
    started = time.monotonic()
    claimed = 0
    asked_for_help = False
    size = settings.OUTBOX_BATCH_SIZE
    ahead = None  # batches.ClaimAhead: the lane's next batch, claimed while this one is sent
    last_batch = 0.0  # how long the last batch took to send
    try:
        while True:
            if lane != URGENT:
                while urgent := batches.send_batch(URGENT, pace=pace):
                    claimed += urgent
            claim = ahead.result() if ahead else batches.claim_batch(lane, pace=pace)
            ahead = None
            batch = claim[2]
            if not batch:
                break
            batch_started = time.monotonic()
            # A full batch: more may be due. Not when this batch ends the drain's time.
            ends_drain = later and (
                batch_started + last_batch - started > settings.OUTBOX_DRAIN_SECONDS
            )
            if batch >= size and not ends_drain and batches.ClaimAhead.possible():
                ahead = batches.ClaimAhead(lane, pace=pace, size=size)
            batches.send_batch(lane, pace=pace, claim=claim)
            last_batch = time.monotonic() - batch_started
            claimed += batch
            if later and not asked_for_help and batch >= size:
                # More is due than a batch: an idle worker (or process) may take a share.
                asked_for_help = wake(lane)
            if later and time.monotonic() - started > settings.OUTBOX_DRAIN_SECONDS:
                # The rest in a task of its own, so that the worker runs others' tasks between.
                if ahead is not None:
                    ahead, claimed_ahead = None, ahead
                    claimed_ahead.hand_back()
                wake(lane)
                return claimed
    finally:
        if ahead is not None:
            # This drain failed: the rows claimed ahead are due again at once.
            try:
                ahead.hand_back()
            except Exception:
                log.exception("The outbox rows claimed ahead wait for their claim to run out")
        batches.ClaimAhead.finished()
    if later:
        for each in {URGENT, lane}:
            at = batches.next_due(each)
            if at is not None:
                wake(each, at)
    return claimed


def wake(lane, at=None):
    """Have a worker drain the lane, now or at `at`. Returns whether the broker took the task;
    if not, the rows stay pending and the sweep wakes their lane."""
    now = timezone.now()
    wake_at = None
    if at is not None and at > now:
        wake_at = int(at.timestamp() * 1000)
        if _wake_up_planned(lane, wake_at, now):
            return True
    try:
        send_due_emails.apply_async(
            (lane,) if wake_at is None else (lane, wake_at),
            queue=lane,
            eta=None if wake_at is None else at,
        )
    except BrokerUnavailable as error:  # the failure itself was logged moments ago
        log.warning("Outbox lane %s left for the sweep: %s", lane, error)
        return False
    except Exception:
        log.exception("Could not wake the outbox lane %s; the sweep will", lane)
        return False
    return True


def _wake_key(lane):
    return f"outbox-wake:{lane}"


def _wake_up_planned(lane, wake_at, now):
    """Whether a wake-up of the lane is planned no later than `wake_at`; if not, this one is.
    Every drain that leaves rows for later asks for one: without this, each would start a chain
    of wake-ups of its own. Per cache: with the in-memory cache, one chain per process."""
    try:
        planned = cache.get(_wake_key(lane))
        if planned is not None and planned <= wake_at:
            return True
        seconds = math.ceil((wake_at - now.timestamp() * 1000) / 1000) + 60
        cache.set(_wake_key(lane), wake_at, timeout=seconds)
    except Exception:
        log.warning("No cache to plan the outbox wake-up in: one more task", exc_info=True)
    return False


def _forget_wake_up(lane, wake_at):
    try:
        if cache.get(_wake_key(lane)) == wake_at:
            cache.delete(_wake_key(lane))
    except Exception:
        log.warning("No cache to forget the outbox wake-up in", exc_info=True)


class _WakeOnCommit:
    def __init__(self, lane):
        self.lane = lane

    def __call__(self):
        wake(self.lane)


def hand_over_on_commit(row_id, kind):
    """Once the surrounding transaction commits: the row's lane is woken, once for all the rows
    of the lane that the transaction queued (the drain finds them all); or, without batches, the
    row gets its own task."""
    if not settings.OUTBOX_SEND_IN_BATCHES:
        transaction.on_commit(lambda: hand_to_celery(row_id))
        return
    lane = lane_of(kind)
    savepoints = set(connection.savepoint_ids)
    # {lane: (the connection's list of callbacks, the savepoints it was registered in)}: Django
    # replaces the list on every commit and every rollback, so while it is the same list the
    # wake-up is still in it (a bulk action's 1,000 emails would otherwise scan it 1,000 times).
    registered = connection.__dict__.setdefault("outbox_wake_on_commit", {})
    earlier = registered.get(lane)
    if earlier and earlier[0] is connection.run_on_commit and earlier[1] <= savepoints:
        return
    transaction.on_commit(_WakeOnCommit(lane))
    if connection.in_atomic_block:
        registered[lane] = (connection.run_on_commit, savepoints)


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
    """Queue the row's task on its kind's queue (with batches: wake its lane). Returns whether
    the broker took it; if not (down, or hung: that costs at most
    settings.REDIS_TIMEOUT_SECONDS), the row stays pending and the sweep re-queues it."""
    kind = OutboxEmail.objects.filter(pk=row_id).values_list("kind", flat=True).first()
    if settings.OUTBOX_SEND_IN_BATCHES:
        return wake(queue_for(kind))
    try:
        send_outbox_email.apply_async((row_id,), queue=queue_for(kind))
    except BrokerUnavailable as error:  # the failure itself was logged moments ago
        log.warning("Outbox email %s left for the sweep: %s", row_id, error)
        return False
    except Exception:
        log.exception("Could not queue outbox email %s; the sweep will retry it", row_id)
        return False
    return True


def hand_many_to_celery(row_ids, kinds):
    """Hand many rows of `kinds` ({kind: rows}) to Celery with one message (a bulk invite, the
    CSV import): with batches, a wake-up of their lanes; without, a worker then gives each row
    its own task (`hand_out_emails`), paced like any other. Publishing costs about half a
    millisecond a message with Redis, so a 10,000-row import handing its rows one by one spent
    5 s on it before the next batch could start. Broker down: as `hand_to_celery`, the rows
    stay pending and the sweep re-queues them."""
    row_ids = list(row_ids)
    if settings.OUTBOX_SEND_IN_BATCHES:
        for lane in {queue_for(kind) for kind in kinds}:
            wake(lane)
        return
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
    since its next attempt (a retry after a failure, its turn in the pace, the end of a claim)
    was due: the broker was down, or a worker died holding its task. Returns the ids."""
    now = timezone.now()
    # Counting from the due time, not only from the queue time, leaves a row of a long pace
    # backlog, or one whose retry is just due, to the task that is about to run it.
    cutoff = now - settings.OUTBOX_REQUEUE_AFTER
    ids = []
    for lane in LANES:
        # A lane at a time, as the claim reads it, in two ranges of its partial index: the rows
        # due before the cutoff, and those some code wrote without a due time (the claim skips
        # those). One query with both would read the lane's every pending row.
        for due in (Q(next_attempt_at__lt=cutoff), Q(next_attempt_at__isnull=True)):
            stale = OutboxEmail.objects.filter(
                OUTBOX_LANES[lane], due, status=OutboxEmail.Status.PENDING, queued_at__lt=cutoff
            ).order_by()
            ids += stale.values_list("pk", flat=True)[: SWEEP_LIMIT - len(ids)]
    # Due now: also a row some code wrote without a due time (the claim skips those).
    OutboxEmail.objects.filter(pk__in=ids).update(queued_at=now, next_attempt_at=now)
    if settings.OUTBOX_SEND_IN_BATCHES:
        kinds = OutboxEmail.objects.filter(pk__in=ids).values_list("kind", flat=True).distinct()
        for lane in {queue_for(kind) for kind in kinds}:
            wake(lane)
        return ids
    for row_id in ids:
        if hand_to_celery(row_id) is False:
            break  # the broker failed: the next sweep tries the rest again
    return ids


@worker_process_init.connect
def _warm_up(**kwargs):
    """What the first email of a process would pay for once, paid at its start: the URL
    patterns (an email's link is reversed; the first reverse imports every view module and
    compiles every pattern, about 0.4 s, which held up the first batch after a worker started)."""
    get_resolver().reverse_dict  # noqa: B018 - read for its side effect, the patterns loaded


@worker_ready.connect
def _drain_at_start(**kwargs):
    # The solo pool's process is the worker's own (no worker_process_init).
    _warm_up()
    # A worker restarted after a crash sends what is due, and plans the wake-up of the rest
    # (the rows a killed worker had claimed, once its claim has run out).
    if settings.OUTBOX_SEND_IN_BATCHES:
        for lane in LANES:
            wake(lane)


@worker_process_shutdown.connect
@worker_shutdown.connect
def _close_mail_session(**kwargs):
    # A polite QUIT, rather than a dropped connection in the mail server's log.
    delivery.mail_session.close()
