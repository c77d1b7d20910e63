"""The Celery app. Its tasks remember, per process, that the broker just failed them: on a hung
broker every publish waits out the socket timeout (REDIS_TIMEOUT_SECONDS), and a bulk action
hands its emails over one by one, so 1,000 emails would have waited 1,000 times. For
BROKER_RETRY_AFTER_SECONDS after a failure a publish fails at once instead; every caller already
leaves what it could not hand over to a sweep (the outbox, stalled imports)."""

import os
import time

from celery import Celery, Task
from kombu.exceptions import OperationalError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal_admin.settings")

BROKER_RETRY_AFTER_SECONDS = 3.0
# broker URL -> time.monotonic() of the last failed publish
_broker_failed_at = {}


class BrokerUnavailable(OperationalError):
    """Not published: the broker failed another publish of this process moments ago."""


class PortalTask(Task):
    def apply_async(self, *args, **kwargs):
        app = self._get_app()
        if app.conf.task_always_eager:
            return super().apply_async(*args, **kwargs)
        url = app.conf.broker_write_url
        failed_at = _broker_failed_at.get(url)
        if failed_at is not None and time.monotonic() - failed_at < BROKER_RETRY_AFTER_SECONDS:
            raise BrokerUnavailable(
                f"Not queued: the broker failed {time.monotonic() - failed_at:.1f} s ago."
            )
        try:
            result = super().apply_async(*args, **kwargs)
        except OperationalError:  # Celery's wrapper of every connection error and timeout
            _broker_failed_at[url] = time.monotonic()
            raise
        _broker_failed_at.pop(url, None)
        return result


app = Celery("portal_admin", task_cls=PortalTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
