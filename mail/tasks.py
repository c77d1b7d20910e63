from celery import shared_task
from celery.signals import worker_process_shutdown, worker_shutdown

from mail import outbox


@shared_task(bind=True, max_retries=None, acks_late=True)
def send_outbox_email(self, row_id, slot=None):
    # Eagerly run tasks (no broker: the embedded demo) have nobody to run them later: no pace
    # there, and a failed row stays pending for the sweep instead of retrying at once in a loop.
    eager = self.request.is_eager
    try:
        return outbox.deliver(row_id, pace=not eager, slot=slot)
    except outbox.SendDeferred as deferred:
        # The task comes back at its turn, carrying its reservation. Until then Celery keeps it
        # aside (a task with a countdown occupies no process of the pool): no worker sleeps on
        # it, and the emails of other accounts go ahead.
        raise self.retry(
            args=(row_id,),
            kwargs={"slot": deferred.slot},
            countdown=deferred.countdown,
            exc=None,
        ) from None
    except outbox.SendFailed as failure:
        if failure.final or eager:
            return False
        raise self.retry(args=(row_id,), kwargs={}, countdown=failure.retry_in, exc=None) from None


@shared_task(acks_late=True)
def hand_out_emails(row_ids):
    """The worker's half of `outbox.hand_many_to_celery`. Run twice (a worker killed part-way),
    a row gets two tasks; sending stays at most once per row (`deliver` locks it and checks its
    status)."""
    for row_id in row_ids:
        outbox.hand_to_celery(row_id)


@shared_task
def requeue_unsent_emails():
    return len(outbox.requeue_unsent())


@worker_process_shutdown.connect
@worker_shutdown.connect
def _close_mail_session(**kwargs):
    # A polite QUIT, rather than a dropped connection in the mail server's log.
    outbox.mail_session.close()
