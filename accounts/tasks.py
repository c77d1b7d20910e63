from celery import shared_task

from accounts import outbox


@shared_task(bind=True, max_retries=None, acks_late=True)
def send_outbox_email(self, row_id):
    try:
        return outbox.deliver(row_id)
    except outbox.SendFailed as failure:
        # Eagerly run tasks (no broker: the embedded demo) would retry at once in a loop; there the
        # row stays pending for the sweep instead.
        if failure.final or self.request.is_eager:
            return False
        raise self.retry(countdown=failure.retry_in, exc=None) from None


@shared_task
def requeue_unsent_emails():
    return len(outbox.requeue_unsent())
