"""/health/ tells a load balancer whether the database answers, fast, to anybody, with nothing
else in it. /health/ready/ asks every part (database, Redis, a worker's and beat's heartbeats,
the outbox's oldest email): anybody learns ready or not, MSSP staff and the monitoring token
learn which check said what."""

from datetime import timedelta
from types import SimpleNamespace
from unittest import mock

import pytest
from django.db import OperationalError
from django.utils import timezone

from accounts import lifecycle
from accounts.models import OutboxEmail, UserType
from operations import figures, health, heartbeats
from operations.models import Heartbeat
from portal_admin.celery import app as celery_app
from tests.factories import ContactFactory

TOKEN = "monitoring-token-for-tests-0123456789"
CHECK_NAMES = ["database", "redis", "worker", "beat", "outbox"]


@pytest.fixture(autouse=True)
def _with_a_broker(settings):
    """As in production: tasks go to a broker (none is contacted: it is not Redis here), so the
    worker and beat checks apply; the cache is this process's."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "memory://"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.MONITORING_TOKEN = TOKEN


def beat_of(kind, name, *, seconds_ago=1, stopped=False):
    seen = timezone.now() - timedelta(seconds=seconds_ago)
    return Heartbeat.objects.create(
        name=name,
        kind=kind,
        pid=4242,
        started_at=seen - timedelta(hours=1),
        seen_at=seen,
        stopped_at=seen if stopped else None,
    )


@pytest.fixture
def alive(db):
    beat_of(Heartbeat.Kind.WORKER, "celery@web-1")
    beat_of(Heartbeat.Kind.BEAT, "beat@web-1", seconds_ago=20)


def pending_email(account, partner_role, technician, *, minutes_ago):
    contact = ContactFactory(portal_account=account)
    user = lifecycle.invite(
        account, user_type=UserType.PARTNER, role=partner_role, by=technician, contact=contact
    )
    # Pending: the test's transaction never commits, so no worker was handed it.
    row = OutboxEmail.objects.get(user=user, status=OutboxEmail.Status.PENDING)
    OutboxEmail.objects.filter(pk=row.pk).update(
        created_at=timezone.now() - timedelta(minutes=minutes_ago)
    )
    return row


def ready(client, **headers):
    response = client.get("/health/ready/", headers=headers)
    return response, response.json()


# --- /health/ ---


def test_health_says_ok_in_one_query_without_a_session(client, db, django_assert_num_queries):
    with django_assert_num_queries(1):
        response = client.get("/health/")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "Set-Cookie" not in response.headers
    assert "Cookie" not in response.get("Vary", "")
    assert "no-store" in response["Cache-Control"]


def test_health_answers_a_probe_by_ip_over_plain_http(client, db, settings):
    settings.ALLOWED_HOSTS = ["admin.example.com"]
    settings.SECURE_SSL_REDIRECT = True

    response = client.get("/health/", HTTP_HOST="10.0.0.7:8000")

    assert response.status_code == 200


def test_health_is_503_when_the_database_does_not_answer(client, db):
    broken = mock.MagicMock()
    broken.cursor.side_effect = OperationalError("connection refused")
    with mock.patch.object(health, "connection", broken):
        response = client.get("/health/")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}


def test_health_holds_no_tenant_data_even_for_staff(admin_client, account):
    response = admin_client.get("/health/")

    assert response.json() == {"status": "ok"}
    assert b"acme" not in response.content.lower()


# --- /health/ready/ ---


def test_ready_when_every_part_answers(client, alive):
    response, body = ready(client)

    assert response.status_code == 200
    # Anybody learns ready or not; which part said what is for staff and the token.
    assert body == {"status": "ready"}
    assert "no-store" in response["Cache-Control"]


def test_the_token_sees_every_check_by_name(client, alive):
    response, body = ready(client, Authorization=f"Bearer {TOKEN}")

    assert response.status_code == 200
    assert list(body["checks"]) == CHECK_NAMES
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["worker"]["detail"].startswith("1 worker alive; last heartbeat")
    assert body["checks"]["outbox"]["detail"] == "No email is waiting."


@pytest.mark.parametrize("persona", ["admin_client", "technician_client"])
def test_mssp_staff_see_every_check(request, persona, alive):
    _response, body = ready(request.getfixturevalue(persona))

    assert list(body["checks"]) == CHECK_NAMES


@pytest.mark.parametrize("headers", [{"Authorization": "Bearer wrong"}, {}])
def test_no_details_without_the_token(client, alive, headers):
    _response, body = ready(client, **headers)

    assert "checks" not in body


def test_no_details_for_an_account_admin(account_admin_client, alive):
    _response, body = ready(account_admin_client)

    assert "checks" not in body


def test_no_details_when_no_token_is_set(client, alive, settings):
    settings.MONITORING_TOKEN = ""

    _response, body = ready(client, Authorization="Bearer ")

    assert "checks" not in body


def test_a_silent_worker_makes_it_not_ready_and_is_named(client, db):
    beat_of(Heartbeat.Kind.WORKER, "celery@web-1", seconds_ago=300)
    beat_of(Heartbeat.Kind.BEAT, "beat@web-1")

    response, body = ready(client, Authorization=f"Bearer {TOKEN}")

    assert response.status_code == 503
    assert body["status"] == "not ready"
    worker = body["checks"]["worker"]
    assert not worker["ok"]
    assert worker["detail"] == (
        "No worker has sent a heartbeat in the last 60 s; the last one, celery@web-1, was seen "
        "5 min ago. Emails and imports wait."
    )
    assert [name for name, check in body["checks"].items() if not check["ok"]] == ["worker"]


def test_a_worker_that_shut_down_is_not_alive(client, db):
    beat_of(Heartbeat.Kind.WORKER, "celery@web-1", stopped=True)
    beat_of(Heartbeat.Kind.BEAT, "beat@web-1")

    _response, body = ready(client, Authorization=f"Bearer {TOKEN}")

    assert body["checks"]["worker"]["detail"].endswith("and shut down. Emails and imports wait.")


def test_no_heartbeat_ever(client, db):
    response, body = ready(client, Authorization=f"Bearer {TOKEN}")

    assert response.status_code == 503
    assert not body["checks"]["worker"]["ok"]
    assert body["checks"]["beat"]["detail"].startswith("Has not run in the last 120 s.")


def test_a_silent_beat_makes_it_not_ready(client, db):
    beat_of(Heartbeat.Kind.WORKER, "celery@web-1")
    beat_of(Heartbeat.Kind.BEAT, "beat@web-1", seconds_ago=600)

    response, body = ready(client, Authorization=f"Bearer {TOKEN}")

    assert response.status_code == 503
    assert body["checks"]["beat"] == {
        "ok": False,
        "detail": "Has not run in the last 120 s (last seen 10 min ago). Unsent emails are not "
        "re-queued and stalled imports not resumed.",
    }


def test_an_email_waiting_too_long_makes_it_not_ready(
    client, alive, account, partner_role, technician
):
    pending_email(account, partner_role, technician, minutes_ago=45)
    pending_email(account, partner_role, technician, minutes_ago=2)

    response, body = ready(client, Authorization=f"Bearer {TOKEN}")

    assert response.status_code == 503
    assert body["checks"]["outbox"] == {
        "ok": False,
        "detail": "2 emails waiting; the oldest was queued 45 min ago, over the 30 min allowed.",
    }


def test_a_fresh_backlog_is_ready(client, alive, account, partner_role, technician):
    pending_email(account, partner_role, technician, minutes_ago=5)

    response, body = ready(client, Authorization=f"Bearer {TOKEN}")

    assert response.status_code == 200
    assert body["checks"]["outbox"]["detail"] == "1 email waiting; the oldest was queued 5 min ago."


def test_redis_that_does_not_answer_is_named(client, alive, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:9/0"  # discard port: nothing listens

    response, body = ready(client, Authorization=f"Bearer {TOKEN}")

    assert response.status_code == 503
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["redis"]["detail"].startswith("The broker does not answer (")


def test_without_a_broker_the_worker_and_beat_are_not_needed(client, db, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the embedded demo

    response, body = ready(client, Authorization=f"Bearer {TOKEN}")

    assert response.status_code == 200
    assert body["checks"]["worker"]["detail"] == "Not used: tasks run in the web process."


def test_a_check_that_cannot_run_fails_with_why(client, alive):
    with mock.patch.object(
        figures, "oldest_pending_created_at", side_effect=OperationalError("gone")
    ):
        response, body = ready(client, Authorization=f"Bearer {TOKEN}")

    assert response.status_code == 503
    assert body["checks"]["outbox"] == {
        "ok": False,
        "detail": "Could not be checked: OperationalError.",
    }


def test_ready_answers_a_probe_over_plain_http(client, alive, settings):
    settings.SECURE_SSL_REDIRECT = True

    response, _body = ready(client)

    assert response.status_code == 200


# --- Heartbeats: what the worker and beat write ---


def test_a_worker_writes_its_start_its_heartbeats_and_its_shutdown(db):
    consumer = SimpleNamespace(hostname="celery@web-2")
    heart = SimpleNamespace(eventer=SimpleNamespace(hostname="celery@web-2"))

    heartbeats._worker_started(sender=consumer)
    started = Heartbeat.objects.get(name="celery@web-2")
    heartbeats._last_write.clear()  # the next heartbeat is due at once
    heartbeats._worker_heartbeat(sender=heart)
    seen = Heartbeat.objects.get(name="celery@web-2")
    heartbeats._worker_stopped(sender=consumer)
    stopped = Heartbeat.objects.get(name="celery@web-2")

    assert started.kind == Heartbeat.Kind.WORKER
    assert started.stopped_at is None
    assert seen.started_at == started.started_at
    assert seen.seen_at > started.seen_at
    assert stopped.stopped_at == stopped.seen_at
    # Started again: alive, from a new start.
    heartbeats._worker_started(sender=consumer)
    again = Heartbeat.objects.get(name="celery@web-2")
    assert again.stopped_at is None
    assert again.started_at > started.started_at


def test_heartbeats_are_written_every_few_seconds_not_every_two(db):
    heart = SimpleNamespace(eventer=SimpleNamespace(hostname="celery@web-3"))
    heartbeats._last_write.clear()

    heartbeats._worker_heartbeat(sender=heart)
    first = Heartbeat.objects.get(name="celery@web-3").seen_at
    heartbeats._worker_heartbeat(sender=heart)

    assert Heartbeat.objects.get(name="celery@web-3").seen_at == first


def test_a_heartbeat_the_database_refuses_does_not_stop_the_worker(db, caplog):
    heart = SimpleNamespace(eventer=SimpleNamespace(hostname="celery@web-4"))
    heartbeats._last_write.clear()
    with (
        mock.patch.object(heartbeats, "record", side_effect=OperationalError("gone")),
        mock.patch.object(heartbeats, "connection") as connection,
    ):
        heartbeats._worker_heartbeat(sender=heart)

    assert "Could not record the heartbeat of celery@web-4" in caplog.text
    # A broken connection is dropped: the next heartbeat opens a new one.
    connection.close.assert_called_once_with()
    assert not Heartbeat.objects.exists()


def test_beat_writes_its_start_and_its_publishing(db):
    heartbeats._beat_name.clear()
    heartbeats._beat_published()  # not beat (yet): nothing
    assert not Heartbeat.objects.exists()

    with mock.patch.object(heartbeats.atexit, "register"):
        heartbeats._beat_started(sender=None)
    heartbeats._last_write.clear()
    heartbeats._beat_published()

    [row] = Heartbeat.objects.all()
    assert row.kind == Heartbeat.Kind.BEAT
    assert row.name.startswith("beat@")
    heartbeats._beat_name.clear()


def test_beat_publishes_a_pulse_often_enough_for_the_check():
    entry = celery_app.conf.beat_schedule["operations-beat-pulse"]

    assert entry["task"] == "operations.tasks.beat_pulse"
    assert entry["schedule"] == heartbeats.BEAT_PULSE_SECONDS
    assert heartbeats.BEAT_PULSE_SECONDS + heartbeats.WRITE_EVERY_SECONDS < 120
