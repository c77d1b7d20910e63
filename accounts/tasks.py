"""The access policies, run by beat (CELERY_BEAT_SCHEDULE). Each is idempotent: a second run
right after the first finds nothing to do."""

import logging

from celery import shared_task

from accounts import expiry, inactivity, reminders

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def send_invitation_reminders():
    sent = reminders.run()
    logger.info("Invitation reminders sent: %s", sent)
    return sent


@shared_task(ignore_result=True)
def end_expired_access():
    disabled = expiry.run()
    logger.info("Users disabled at their access end date: %s", disabled)
    return disabled


@shared_task(ignore_result=True)
def apply_inactivity_policies():
    warned, disabled = inactivity.run()
    logger.info("Inactivity policies: %s warned, %s disabled", warned, disabled)
    return warned, disabled
