from celery import shared_task


@shared_task(ignore_result=True)
def beat_pulse():
    """Beat publishes this every few seconds (operations.heartbeats.schedule_beat_pulse): its
    publishing is beat's heartbeat. The worker that receives it has nothing to do."""
    return None
