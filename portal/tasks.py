import logging

from celery import shared_task
from django.db import transaction

from portal import email_requests

log = logging.getLogger(__name__)


@shared_task(acks_late=True)
def answer_email_request(account_id, email, what, ip):
    return email_requests.answer(account_id, email, what, ip)


def answer_email_request_on_commit(account, email, what, ip):
    def hand_over():
        try:
            # What someone typed (any address, known or not) and their IP stay out of the
            # worker's log lines about the task: Celery logs argsrepr instead of the arguments.
            answer_email_request.apply_async(
                (account.pk, email, what, ip), argsrepr=f"({account.pk}, '…', {what!r}, '…')"
            )
        except Exception:  # broker down: the person asks again; the page promised nothing more
            log.exception("Could not queue a portal %s request", what)

    transaction.on_commit(hand_over)
