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
            answer_email_request.delay(account.pk, email, what, ip)
        except Exception:  # broker down: the person asks again; the page promised nothing more
            log.exception("Could not queue a portal %s request", what)

    transaction.on_commit(hand_over)
