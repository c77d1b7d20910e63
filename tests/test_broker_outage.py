import socket
import time

import pytest
from kombu import pools

from accounts import lifecycle
from accounts.models import OutboxEmail, UserType
from portal_admin.celery import app as celery_app
from tests.factories import ContactFactory


@pytest.fixture
def dead_broker():
    """A broker address where nothing listens, with tasks really published (not eager)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the block ends: nobody listens
    conf = celery_app.conf
    previous = (conf.get("broker_write_url"), conf.get("broker_read_url"), conf.task_always_eager)
    # Not broker_url: Celery reads CELERY_BROKER_URL from the environment before it, so with a
    # broker configured (CI) tasks went to the real one.
    conf.broker_write_url = conf.broker_read_url = f"redis://127.0.0.1:{port}/0"
    conf.task_always_eager = False
    _fresh_connection_pool()
    yield
    conf.broker_write_url, conf.broker_read_url, conf.task_always_eager = previous
    _fresh_connection_pool()


def _fresh_connection_pool():
    """Celery and kombu build connection and producer pools from the broker URL on first use;
    reset them so the next publish uses the URL set now. Closing a pool without dropping it
    from kombu's registry would break every later test ("Acquire on closed pool")."""
    pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def test_a_dead_broker_does_not_hang_the_change_and_the_row_waits_for_the_sweep(
    dead_broker, account, partner_role, technician, django_capture_on_commit_callbacks
):
    contact = ContactFactory(portal_account=account, email="grace@example.com")
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        user = lifecycle.invite(
            account, user_type=UserType.PARTNER, role=partner_role, by=technician, contact=contact
        )
    # Not a performance figure: a hang would be minutes (kombu retries forever by default).
    assert time.monotonic() - started < 15
    assert OutboxEmail.objects.get(user=user).status == OutboxEmail.Status.PENDING
