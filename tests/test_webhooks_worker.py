"""Webhooks through a real Celery worker process, Redis and PostgreSQL: the committed change's
task reaches the worker, which posts the signed event to a real receiver on localhost; a 500 is
retried once beat's sweep finds it due. tests/test_webhooks.py covers the rules eagerly."""

import pytest
from django.utils import timezone

from accounts import lifecycle
from tests.factories import PortalUserFactory
from tests.test_outbox_worker import broker, start_worker  # noqa: F401 - fixtures
from tests.test_webhook_payloads import readme_verifier
from tests.webhook_receiver import Receiver
from webhooks import tasks
from webhooks.models import Delivery, Endpoint

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_the_worker_delivers_retries_and_signs(account, technician, start_worker):  # noqa: F811
    user = PortalUserFactory(portal_account=account)
    worker = start_worker(
        1,  # no email is sent here
        env={"WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true", "WEBHOOKS_RETRY_BASE_SECONDS": "1"},
    )
    with Receiver([500, 200]) as receiver:
        hook = Endpoint.objects.create(
            portal_account=account, url=receiver.url, events=["user.disabled"]
        )
        lifecycle.disable(user, by=technician)  # commits: the task goes to Redis

        row = worker.wait_for(
            "the first attempt",
            lambda: Delivery.objects.filter(attempts=1, response_code=500).first(),
        )
        assert row.status == "pending"
        worker.wait_for("the retry to come due", lambda: timezone.now() >= row.next_attempt_at)
        tasks.sweep_webhooks.delay()  # what beat does every 30 seconds
        row = worker.wait_for(
            "the retry to be delivered",
            lambda: Delivery.objects.filter(status="delivered").first(),
        )

    assert (row.attempts, row.response_code) == (2, 200)
    first, second = receiver.requests
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"] == row.event_id
    assert readme_verifier()(hook.secret, second["headers"], second["body"])
