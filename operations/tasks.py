import logging

from celery import shared_task

from operations import retention
from operations.models import RetentionRun

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def beat_pulse():
    """Beat publishes this every few seconds (operations.heartbeats.schedule_beat_pulse): its
    publishing is beat's heartbeat. The worker that receives it has nothing to do."""
    return None


@shared_task(ignore_result=True)
def apply_retention():
    """Beat, daily: delete what is kept no longer (operations.retention). Idempotent: a second
    run finds nothing left; a run cut short by its time budget is finished by the next."""
    counts = retention.apply(source=RetentionRun.Source.BEAT)
    logger.info("Retention applied: %s", ", ".join(f"{kind} {n}" for kind, n in counts.items()))
    return counts
