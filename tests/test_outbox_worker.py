"""The outbox against a real Celery worker process, Redis and an SMTP server.

tests/test_outbox.py runs the task eagerly and covers the rules. These cover what only a
separate process shows: the task really reaches the broker after the commit, the worker sees
the same database and SECRET_KEY (its links work here), the SMTP conversation happens, a row
handed to the worker twice is one email, and an SMTP outage is retried by the worker itself.

The test process and the worker share the configured broker (CELERY_BROKER_URL) and its
queues; they are purged before and after each test so that no message of an earlier run, or a
retry left behind by this one, reaches a worker it was not meant for. The worker runs the
production command, which consumes every queue (settings.CELERY_TASK_QUEUES)."""

import email
import email.policy
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from aiosmtpd.controller import Controller
from django.conf import settings
from django.db import connection

from accounts import lifecycle, tokens
from accounts.models import LoginToken, OutboxEmail, TokenPurpose, UserType
from mail import tasks
from mail.tasks import send_outbox_email
from portal_admin.celery import app as celery_app
from tests.factories import ContactFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WAIT_SECONDS = 30
TASK_DONE = re.compile(
    r"Task mail\.tasks\.(?:send_outbox_email|send_due_emails)\[[0-9a-f-]+\] succeeded in "
    r"[\d.]+s: (\w+)"
)


def free_port():
    """A port nothing listens on (until somebody binds it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url(db):
    """The URL of the database this test process uses (pytest-django's test_... one)."""
    auth = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"], safe="")
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{auth}@{db['HOST']}{port}/{quote(db['NAME'], safe='')}"


class SmtpSink:
    """A local SMTP server that keeps every message it accepts."""

    def __init__(self, port):
        self.port = port
        self.messages = []
        self.controller = Controller(self, hostname="127.0.0.1", port=port)

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message.rcpt_tos = list(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 Message accepted for delivery"


class Worker:
    """`celery worker` in a subprocess, its output in a file (a pipe nobody reads would fill
    up and stall it)."""

    name = "outbox-test"

    def __init__(self, log_path, email_port, *, queues=None, env=None):
        self.log_path = log_path
        self.queues = queues  # None: every queue, as `celery -A portal_admin worker` does
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal_admin.settings",
            "DATABASE_URL": database_url(connection.settings_dict),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            # Tokens are HMAC'd with it: the links the worker mints must work here.
            "SECRET_KEY": settings.SECRET_KEY,
            "DEBUG": "false",
            "SECURE_SSL_REDIRECT": "false",
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(email_port),
            "EMAIL_USE_TLS": "false",
            "EMAIL_HOST_USER": "",
            "EMAIL_HOST_PASSWORD": "",
            "EMAIL_TIMEOUT": "5",
            "OUTBOX_RETRY_BASE_SECONDS": "1",
            # task_results() reads the worker's "Task ... succeeded" lines, logged at INFO.
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.process = None

    def command(self):
        return [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal_admin",
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "--loglevel=INFO",
            *(["-Q", ",".join(self.queues)] if self.queues else []),
            # Its own name, and no chatter with other workers on the same broker (a developer's,
            # another test run's): mingle alone would also cost a second at start-up.
            "--hostname",
            f"{self.name}-{uuid.uuid4().hex[:8]}@%h",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
        ]

    def start(self):
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command(), cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        # SIGTERM is Celery's warm shutdown: the task at hand finishes, unacked messages go back.
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def output(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def task_results(self):
        return TASK_DONE.findall(self.output())

    def wait_for(self, what, condition):
        """Poll `condition` until it returns something truthy; on a timeout, or when the worker
        dies, fail with the worker's output so the reason is in the test report."""
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            if self.process.poll() is not None:
                pytest.fail(
                    f"The worker exited ({self.process.returncode}) while waiting for {what}."
                    f"\n--- worker output ---\n{self.output()}"
                )
            time.sleep(0.1)
        pytest.fail(
            f"Waited {WAIT_SECONDS}s for {what} in vain.\n--- worker output ---\n{self.output()}"
        )


@pytest.fixture
def broker():
    """Tasks go to Redis, whatever an earlier test left in task_always_eager, and the queue
    starts and ends empty."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    celery_app.control.purge()
    yield redis.Redis.from_url(settings.CELERY_BROKER_URL)
    celery_app.conf.task_always_eager = previous
    celery_app.control.purge()


@pytest.fixture
def start_worker(broker, transactional_db, tmp_path):
    """Start a worker against this test's database. Torn down before the fixtures it depends
    on: the worker is gone before the database is flushed and the queue purged."""
    workers = []

    def start(email_port, **options):
        worker = Worker(tmp_path / f"worker-{len(workers)}.log", email_port, **options)
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def smtp_server():
    sinks = []

    def start(port=None):
        sink = SmtpSink(port or free_port())
        sink.controller.start()
        sinks.append(sink)
        return sink

    yield start
    for sink in sinks:
        sink.controller.stop()


@pytest.fixture
def invite_grace(account, partner_role, technician):
    def invite():
        contact = ContactFactory(
            portal_account=account, name="Grace Hopper", email="grace@example.com"
        )
        return lifecycle.invite(
            account,
            user_type=UserType.PARTNER,
            role=partner_role,
            by=technician,
            contact=contact,
            send_email=True,
        )

    return invite


def row_in(status, row):
    return OutboxEmail.objects.filter(pk=row.pk, status=status).first()


def test_the_worker_sends_a_queued_invitation_over_smtp(
    account, broker, invite_grace, smtp_server, start_worker
):
    smtp = smtp_server()
    user = invite_grace()  # commits: on_commit hands the row to Celery
    row = OutboxEmail.objects.get(user=user)
    assert row.status == "pending"
    # An invitation is bulk mail: its own queue, behind nobody's sign-in link.
    assert broker.llen("bulk") == 1, "the committed invite did not put a task on the queue"

    worker = start_worker(smtp.port)
    sent = worker.wait_for("the invitation to be sent", lambda: row_in("sent", row))

    assert sent.sent_at is not None
    assert (sent.attempts, sent.last_error) == (1, "")
    assert sent.subject == "You're invited to Acme Portal"
    assert len(smtp.messages) == 1, worker.output()
    [message] = smtp.messages
    assert message.rcpt_tos == ["grace@example.com"]
    assert message["Subject"] == "You're invited to Acme Portal"
    assert message["X-Outbox-Id"] == str(row.pk)
    body = message.get_body(preferencelist=("plain",)).get_content()
    link = re.search(r"https?://\S+/p/acme/activate/([\w-]+)/", body)
    assert link, body
    # Same database, same SECRET_KEY: the worker's link opens here, for this user.
    assert tokens.peek(link.group(1), TokenPurpose.ACTIVATION, account).user == user


def test_a_row_handed_to_the_worker_twice_is_sent_once(
    broker, invite_grace, smtp_server, start_worker
):
    smtp = smtp_server()
    user = invite_grace()  # its lane's wake-up
    row = OutboxEmail.objects.get(user=user)
    # Two more before any worker runs: a sweep that overlapped the first, and the task of the
    # row itself (as queued before batches, or with OUTBOX_SEND_IN_BATCHES off).
    tasks.wake("bulk")
    send_outbox_email.delay(row.pk)
    assert broker.llen("bulk") + broker.llen("urgent") == 3

    worker = start_worker(smtp.port)
    # And the worker drains both lanes when it starts: two more tasks.
    worker.wait_for("all tasks to finish", lambda: len(worker.task_results()) == 5)
    # And once more, long after it was sent.
    send_outbox_email.delay(row.pk)
    tasks.wake("bulk")
    worker.wait_for("the last tasks to finish", lambda: len(worker.task_results()) == 7)

    assert len(smtp.messages) == 1, worker.output()
    sent = OutboxEmail.objects.get(pk=row.pk)
    assert (sent.status, sent.attempts) == ("sent", 1)
    assert LoginToken.objects.filter(user=user).count() == 1  # one email, one link


def test_an_smtp_outage_is_kept_on_the_row_and_the_worker_retries_it(
    broker, invite_grace, smtp_server, start_worker
):
    port = free_port()  # nothing listens: connection refused
    worker = start_worker(port)
    user = invite_grace()
    row = OutboxEmail.objects.get(user=user)

    failed = worker.wait_for(
        "a failed attempt",
        lambda: OutboxEmail.objects.filter(pk=row.pk, attempts__gte=1).first(),
    )
    assert failed.status == "pending"
    assert failed.last_error.startswith("ConnectionRefusedError"), failed.last_error
    assert failed.next_attempt_at is not None
    assert failed.sent_at is None
    # The link minted for the message that never left goes with it. A retry (every 1 s, 2 s,
    # ...) claims the row again and mints a new link before its own attempt fails, so between
    # attempts, not at any instant, no link is left (CI once looked during a retry's claim).
    worker.wait_for(
        "no link left between attempts",
        lambda: not LoginToken.objects.filter(user=user).exists(),
    )

    # The SMTP server comes back; the worker's own retry (1 s, 2 s, ... backoff) delivers.
    smtp = smtp_server(port)
    sent = worker.wait_for("the retry to send the row", lambda: row_in("sent", row))

    assert sent.attempts >= 2
    assert sent.last_error == ""
    assert len(smtp.messages) == 1, worker.output()
    assert smtp.messages[0].rcpt_tos == ["grace@example.com"]
