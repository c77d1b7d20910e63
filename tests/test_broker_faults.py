"""Redis, the broker and the cache, failing for real: frozen (SIGSTOP: connections are accepted,
nothing answers), killed and started again, and the queues that keep a person's sign-in link
from waiting behind bulk mail or an import.

The tests marked `worker` start a private redis-server on a free port (never the configured
one, so nothing else on it is frozen or killed) and, where the worker is the subject, a real
Celery worker against it or against the configured broker."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from unittest import mock

import pytest
import redis
from django.db import transaction
from django.test import override_settings
from django.urls import reverse

from accounts import bulk_invites
from accounts.models import EmailKind, OutboxEmail
from mail import outbox, tasks
from portal_admin import celery as portal_celery
from portal_admin.celery import app as celery_app
from tests.factories import ContactFactory, PortalAccountFactory, PortalUserFactory
from tests.test_broker_outage import _fresh_connection_pool
from tests.test_outbox_worker import (  # noqa: F401 (fixtures, asked for by name)
    PROJECT_ROOT,
    SmtpSink,
    broker,
    free_port,
    row_in,
    smtp_server,
    start_worker,
)

# Far below the 5 s a hung broker cost; far above the REDIS_TIMEOUT_SECONDS (0.3) it may cost.
ANSWER_WITHIN_SECONDS = 1.0


class RedisServer:
    """A redis-server of this test's own, on `port`, keeping nothing on disk."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.process = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_timeout=1).ping()
                return self
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def freeze(self):
        self.process.send_signal(signal.SIGSTOP)

    def kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a stopped process takes no SIGKILL late
            self.process.kill()
            self.process.wait()


@pytest.fixture
def private_redis():
    servers = []

    def start(port=None):
        server = RedisServer(port).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.kill()


@pytest.fixture
def broker_at():
    """Point this process's Celery at another broker (tasks really published, not run here)."""
    conf = celery_app.conf
    previous = (conf.get("broker_write_url"), conf.get("broker_read_url"), conf.task_always_eager)

    def point(url):
        # Not broker_url: Celery reads CELERY_BROKER_URL from the environment before it.
        conf.broker_write_url = conf.broker_read_url = url
        conf.task_always_eager = False
        _fresh_connection_pool()

    yield point
    conf.broker_write_url, conf.broker_read_url, conf.task_always_eager = previous
    _fresh_connection_pool()


@pytest.fixture
def cache_at(settings):
    """Point Django's cache at a Redis, with the timeouts settings.py gives a Redis CACHE_URL;
    undone before the Redis is killed (the autouse cache clearing comes later)."""
    overrides = []

    def point(url):
        override = override_settings(
            CACHES={
                "default": {
                    "BACKEND": "django.core.cache.backends.redis.RedisCache",
                    "LOCATION": url,
                    "OPTIONS": {
                        "socket_connect_timeout": settings.REDIS_TIMEOUT_SECONDS,
                        "socket_timeout": settings.REDIS_TIMEOUT_SECONDS,
                    },
                }
            }
        )
        override.enable()
        overrides.append(override)

    yield point
    for override in reversed(overrides):
        override.disable()


def timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


# --- Item: a hung broker must not hold a page ---


def test_with_redis_as_the_cache_every_call_gives_up_after_the_redis_timeout():
    """settings.py adds the socket timeouts to a Redis CACHE_URL (read in a fresh process: the
    cache is configured when settings load)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal_admin.settings",
        "DEBUG": "true",
        "CACHE_URL": "redis://127.0.0.1:6390/1",
        "REDIS_TIMEOUT_SECONDS": "0.25",
    }
    script = (
        "import json, django; django.setup(); from django.conf import settings; "
        "print(json.dumps([settings.CACHES['default'].get('OPTIONS', {}), "
        "settings.CELERY_BROKER_TRANSPORT_OPTIONS]))"
    )
    output = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cache_options, transport_options = json.loads(output)
    assert cache_options == {"socket_connect_timeout": 0.25, "socket_timeout": 0.25}
    assert transport_options["socket_timeout"] == 0.25
    assert transport_options["socket_connect_timeout"] == 0.25
    assert transport_options["max_retries"] == 0  # connecting to publish: once


def test_a_broker_that_just_failed_is_not_waited_for_again(db, broker_at, monkeypatch):
    """A bulk action hands its emails over one by one: on a hung broker each would wait out the
    socket timeout. After one failure the next publishes of the process fail at once."""
    broker_at("redis://127.0.0.1:9/0")
    calls = []

    def hung(*args, **kwargs):
        calls.append(1)
        time.sleep(0.3)
        raise portal_celery.OperationalError("Timeout reading from socket")

    monkeypatch.setattr(portal_celery.Task, "apply_async", hung)
    assert tasks.hand_to_celery(1) is False
    _, seconds = timed(lambda: [tasks.hand_to_celery(n) for n in range(2, 50)])
    # Waiting each out would take 48 x 0.3 s; the bound is loose so a busy machine passes.
    assert seconds < 1.0
    assert len(calls) == 1
    monkeypatch.setattr(portal_celery, "BROKER_RETRY_AFTER_SECONDS", 0)
    assert tasks.hand_to_celery(50) is False
    assert len(calls) == 2  # tried again once the pause is over


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_frozen_redis_holds_no_page_for_more_than_a_fraction_of_a_second(
    private_redis, broker_at, cache_at, admin_client, account, partner_role, client
):
    frozen = private_redis()
    broker_at(frozen.url + "/0")
    cache_at(frozen.url + "/1")
    ada = PortalUserFactory(portal_account=account, role=partner_role, email="ada@example.com")
    others = [PortalUserFactory(portal_account=account, role=partner_role) for _ in range(20)]
    # A publish before the freeze: the pooled connection is open, as in a running web process.
    assert tasks.hand_to_celery(0) is True
    frozen.freeze()

    # An admin resets a password from the console: its email is queued on commit.
    url = reverse("user-action", args=[account.slug, ada.pk, "reset-password"])
    response, reset_seconds = timed(lambda: admin_client.post(url))
    assert response.status_code == 302
    row = OutboxEmail.objects.get(user=ada, kind=EmailKind.PASSWORD_RESET)
    assert row.status == "pending"  # the sweep hands it over once the broker is back

    # A bulk action hands 20 emails over, one by one.
    bulk, bulk_seconds = timed(
        lambda: admin_client.post(
            reverse("users-bulk", args=[account.slug]),
            {"action": "send-login-email", "ids": [u.pk for u in others], "confirmed": "1"},
        )
    )
    assert bulk.status_code == 302
    assert OutboxEmail.objects.filter(kind=EmailKind.LOGIN_LINK, status="pending").count() == 20

    # Somebody asks the portal for a sign-in link.
    client.raise_request_exception = False
    asked, ask_seconds = timed(
        lambda: client.post(
            reverse("portal-request-link", args=[account.slug]), {"email": "ada@example.com"}
        )
    )

    # Another admin's plain page.
    page, page_seconds = timed(lambda: admin_client.get(reverse("users", args=[account.slug])))
    assert page.status_code == 200

    assert reset_seconds < ANSWER_WITHIN_SECONDS
    assert bulk_seconds < ANSWER_WITHIN_SECONDS  # one wait for the broker, not twenty
    assert ask_seconds < ANSWER_WITHIN_SECONDS
    # The portal's request throttle counts in this process while the cache hangs (README).
    assert asked.status_code == 200
    assert page_seconds < ANSWER_WITHIN_SECONDS


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_frozen_broker_holds_no_import_start(
    private_redis, broker_at, settings, tmp_path, technician_client, account
):
    from tests.samples import load_world
    from tests.test_import_wizard import upload_and_map, url

    settings.MEDIA_ROOT = tmp_path / "media"
    account.partner_licenses = 50
    account.save()
    load_world(account)
    job = upload_and_map(technician_client, account, "portal-users-template.csv")
    assert technician_client.get(url("import-review", account, job.pk)).status_code == 200
    frozen = private_redis()
    broker_at(frozen.url + "/0")
    assert tasks.hand_to_celery(0) is True  # the pooled connection is open
    frozen.freeze()

    started, seconds = timed(
        lambda: technician_client.post(url("import-start", account, job.pk), {"checked": "1"})
    )

    assert started.status_code == 302
    assert seconds < ANSWER_WITHIN_SECONDS


# --- Item: one queue for everything ---


def test_each_task_has_its_queue_and_the_plain_worker_consumes_them_all_most_urgent_first():
    route = celery_app.amqp.router.route
    assert {
        name: route({}, name)["queue"].name
        for name in [
            "mail.tasks.send_outbox_email",
            "portal.tasks.answer_email_request",
            "mail.tasks.hand_out_emails",
            "mail.tasks.requeue_unsent_emails",
            "imports.tasks.resume_stalled_imports",
            "imports.tasks.delete_expired_import_files",
            "operations.tasks.beat_pulse",
            "imports.tasks.run_import",
            "imports.tasks.dry_run",
        ]
    } == {
        "mail.tasks.send_outbox_email": "urgent",
        "portal.tasks.answer_email_request": "urgent",
        "mail.tasks.hand_out_emails": "bulk",
        "mail.tasks.requeue_unsent_emails": "maintenance",
        "imports.tasks.resume_stalled_imports": "maintenance",
        "imports.tasks.delete_expired_import_files": "maintenance",
        "operations.tasks.beat_pulse": "maintenance",
        "imports.tasks.run_import": "imports",
        "imports.tasks.dry_run": "imports",
    }
    # Without -Q a worker consumes every queue defined, in this order, and with the "priority"
    # strategy always takes from the first one that holds a task.
    assert list(celery_app.amqp.queues) == ["urgent", "maintenance", "imports", "celery", "bulk"]
    assert celery_app.conf.broker_transport_options["queue_order_strategy"] == "priority"


@pytest.mark.parametrize(
    ("kind", "queue"),
    [
        (EmailKind.LOGIN_LINK, "urgent"),
        (EmailKind.LOGIN_CODE, "urgent"),
        (EmailKind.PASSWORD_RESET, "urgent"),
        (EmailKind.REINVITATION, "urgent"),
        (EmailKind.EMAIL_CHANGE_CONFIRM, "urgent"),
        (EmailKind.INVITATION, "bulk"),
        (EmailKind.ACCESS_RESTORED, "bulk"),
        (EmailKind.EMAIL_CHANGE_NOTICE, "bulk"),
    ],
)
def test_an_email_is_handed_to_the_queue_of_its_kind(account, partner_role, kind, queue):
    user = PortalUserFactory(portal_account=account, role=partner_role)
    row = OutboxEmail.objects.create(
        portal_account=account, user=user, to_email=user.email, kind=kind
    )
    with mock.patch.object(tasks.send_due_emails, "apply_async") as publish:
        assert tasks.hand_to_celery(row.pk) is True
    # With batches, the task drains the row's lane, on the queue of the lane's name.
    publish.assert_called_once_with((queue,), queue=queue, eta=None)


class SlowSmtpSink(SmtpSink):
    """A mail server that takes `delay` seconds over each message, as a remote relay may."""

    def __init__(self, port, delay):
        super().__init__(port)
        self.delay = delay

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_sign_in_link_overtakes_a_backlog_of_bulk_invitations(partner_role, technician, request):
    account = PortalAccountFactory(slug="bulky", partner_licenses=100)
    role = partner_role.__class__.objects.create(
        portal_account=account, name="Partner User", user_type=partner_role.user_type
    )
    contacts = [
        ContactFactory(portal_account=account, email=f"invitee{n}@example.com") for n in range(30)
    ]
    ada = PortalUserFactory(portal_account=account, role=role, email="ada@example.com")
    sink = SlowSmtpSink(free_port(), delay=0.1)
    sink.controller.start()
    try:
        # The production command (every queue), one email at a time, no pace in the way.
        worker = request.getfixturevalue("start_worker")(
            sink.port, env={"OUTBOX_RATE_PER_ACCOUNT_PER_MINUTE": "1000000"}
        )
        bulk_invites.invite_many(
            account,
            [(contact, role) for contact in contacts],
            by=technician,
            send_email=True,
        )
        worker.wait_for("the first invitations to go out", lambda: len(sink.messages) >= 2)
        with transaction.atomic():
            outbox.queue_email(ada, EmailKind.LOGIN_LINK)
        worker.wait_for(
            "the sign-in link",
            lambda: any(m.rcpt_tos == ["ada@example.com"] for m in sink.messages),
        )
        invitations_before = next(
            n for n, m in enumerate(sink.messages) if m.rcpt_tos == ["ada@example.com"]
        )
    finally:
        sink.controller.stop()
    # In one queue it would have waited for all 30 (3 s); here for the one being sent.
    assert invitations_before <= 6, [m.rcpt_tos for m in sink.messages]


# --- Item: a worker outlives a broker outage ---


def test_a_worker_reconnects_for_ever():
    assert celery_app.conf.broker_connection_max_retries is None
    assert celery_app.conf.broker_connection_retry_on_startup is True


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_reconnects_when_redis_comes_back_and_runs_the_next_task(
    private_redis, broker_at, account, partner_role, request
):
    server = private_redis()
    broker_at(server.url + "/0")
    smtp = request.getfixturevalue("smtp_server")()
    worker = request.getfixturevalue("start_worker")(
        smtp.port, env={"CELERY_BROKER_URL": server.url + "/0"}
    )
    worker.wait_for("the worker to be ready", lambda: " ready." in worker.output())

    server.kill()
    worker.wait_for("a reconnect attempt", lambda: "Trying again" in worker.output())
    assert "/100)" not in worker.output()  # counted against no limit
    server = private_redis(server.port)

    ada = PortalUserFactory(portal_account=account, role=partner_role, email="ada@example.com")
    with transaction.atomic():
        row = outbox.queue_email(ada, EmailKind.LOGIN_LINK)
    worker.wait_for("the login link to be sent", lambda: row_in("sent", row))
    assert [m.rcpt_tos for m in smtp.messages] == [["ada@example.com"]]
