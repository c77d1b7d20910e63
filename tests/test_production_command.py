"""`python3 run.py production`: gunicorn, a Celery worker and Celery beat against PostgreSQL and
Redis. The test starts the command as an operator would (its own port, this test's database,
the configured broker), waits for /health/ready/ to say ready, asks for a password reset on the
portal (the worker decides and sends it to a local SMTP server), reads the request id in the
worker's JSON log and the email in /metrics, and stops it with SIGTERM: every process ends, in
a bounded time, and none is left behind even when the test fails.

The refusals (SQLite, no broker) need no service and run everywhere."""

import contextlib
import email
import email.policy
import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlencode

import pytest
from aiosmtpd.controller import Controller
from django.conf import settings
from django.db import connection

from portal_admin.celery import app as celery_app
from tests.factories import PortalAccountFactory, PortalUserFactory
from tests.test_outbox_worker import database_url, free_port

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "production-test-token-0123456789"
START_SECONDS = 45
STOP_SECONDS = 40
# Set in every process the command starts (they inherit it): how the clean-up finds them all.
MARKER = "PORTAL_ADMIN_PRODUCTION_TEST"


class SmtpSink:
    def __init__(self):
        self.messages = []
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        return "250 Message accepted for delivery"


def _processes_marked(marker):
    """Pids of the processes whose environment holds the marker (Linux's /proc)."""
    wanted = f"{MARKER}={marker}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if wanted in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def _kill_marked(marker):
    for pid in _processes_marked(marker):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class Stack:
    def __init__(self, tmp_path, env):
        self.output_path = tmp_path / "run.out"
        self.log_dir = tmp_path / "log"
        self.env = env
        self.process = None
        self.port = int(env["BIND"].rsplit(":", 1)[1])
        self.base = f"http://127.0.0.1:{self.port}"
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def start(self, *options):
        with open(self.output_path, "wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "run.py", "production", "--bind", self.env["BIND"], *options],
                cwd=ROOT,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self):
        return self.output_path.read_text(errors="replace") if self.output_path.exists() else ""

    def logs(self):
        return "\n".join(
            f"--- {path.name} ---\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.log_dir.glob("*.log"))
        )

    def fail(self, why):
        pytest.fail(f"{why}\n--- run.py production ---\n{self.output()}\n{self.logs()}")

    def get(self, path, headers=None):
        request = urllib.request.Request(self.base + path, headers=headers or {})
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def post(self, path, data):
        request = urllib.request.Request(self.base + path, data=urlencode(data).encode())
        with self.opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()

    def wait_for(self, what, condition, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.fail(f"run.py production exited ({self.process.returncode}) before {what}")
            try:
                value = condition()
            except OSError:
                value = None
            if value:
                return value
            time.sleep(0.25)
        self.fail(f"Waited {seconds} s in vain for {what}")


@pytest.fixture
def stack_env(tmp_path):
    smtp = SmtpSink()
    smtp.controller.start()
    marker = uuid.uuid4().hex
    broker = settings.CELERY_BROKER_URL
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST", "DJANGO_", "GUNICORN_", "PROMETHEUS_"))
    }
    env.update(
        {
            MARKER: marker,
            "BIND": f"127.0.0.1:{free_port()}",
            # This test's database (pytest-django's test_ one): the stack sees its data.
            "DATABASE_URL": database_url(connection.settings_dict),
            "CELERY_BROKER_URL": broker,
            "CACHE_URL": broker,
            "SECRET_KEY": settings.SECRET_KEY,
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1",
            # Plain HTTP on the test's own port: no TLS proxy in front.
            "SECURE_SSL_REDIRECT": "false",
            "SESSION_COOKIE_SECURE": "false",
            "CSRF_COOKIE_SECURE": "false",
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(smtp.controller.port),
            "EMAIL_USE_TLS": "false",
            "EMAIL_HOST_USER": "",
            "EMAIL_HOST_PASSWORD": "",
            "MONITORING_TOKEN": TOKEN,
            "WEB_CONCURRENCY": "2",
            "WORKER_CONCURRENCY": "2",
            "LOG_DIR": str(tmp_path / "log"),
            "RUN_DIR": str(tmp_path / "run"),
            "STATIC_ROOT": str(tmp_path / "static"),
            "MEDIA_ROOT": str(tmp_path / "media"),
            "STOP_TIMEOUT_SECONDS": str(STOP_SECONDS - 20),
            # Plain HTTP on 127.0.0.1 is what check --deploy refuses (accounts.E002): a trial.
            "DEPLOY_CHECKS": "warn",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env["PORTAL_BASE_URL"] = f"http://{env['BIND']}"
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    celery_app.control.purge()
    yield env, smtp
    celery_app.conf.task_always_eager = previous
    _kill_marked(marker)
    smtp.controller.stop()
    celery_app.control.purge()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_production_starts_sends_an_email_through_the_worker_and_stops(tmp_path, stack_env):
    env, smtp = stack_env
    account = PortalAccountFactory(name="Acme Portal", slug="acme")
    PortalUserFactory(portal_account=account, name="Grace Hopper", email="grace@example.com")
    stack = Stack(tmp_path, env)
    started = time.monotonic()
    stack.start()
    try:
        _run_it(stack, smtp)
        stopped_in = _stop_it(stack)
    finally:
        if stack.process.poll() is None:
            stack.process.kill()
        stack.process.wait()
        _kill_marked(env[MARKER])

    assert stopped_in < STOP_SECONDS
    assert not _processes_marked(env[MARKER]), "a process of the stack outlived it"
    assert time.monotonic() - started < 90


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_is_started_again_and_a_dead_web_stops_the_stack(tmp_path, stack_env):
    env, _smtp = stack_env
    stack = Stack(tmp_path, env)
    stack.start()
    try:
        _wait_until_ready(stack)
        [worker_pid] = re.findall(r"worker pid (\d+)", stack.output())
        os.kill(int(worker_pid), signal.SIGKILL)

        def second_worker():
            return re.findall(r"worker pid (\d+)", stack.output())[1:]

        [new_pid] = stack.wait_for("the worker started again", second_worker, 20)
        # The web kept serving meanwhile, and serves on.
        assert stack.get("/health/")[0] == 200
        _wait_until_ready(stack)  # the new worker's heartbeat

        web_pid = int(re.search(r"web +pid (\d+)", stack.output()).group(1))
        os.kill(web_pid, signal.SIGKILL)
        code = stack.process.wait(timeout=STOP_SECONDS)
    finally:
        if stack.process.poll() is None:
            stack.process.kill()
        stack.process.wait()
        _kill_marked(env[MARKER])

    output = stack.output()
    assert new_pid != worker_pid
    assert "worker exited (code -9) on its own; started again in 1 s." in output
    assert "web exited (code -9) on its own; not restarted." in output
    assert code == 1, output
    assert "beat stopped (exit code 0)" in output
    assert not _processes_marked(env[MARKER])


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_without_worker_it_runs_gunicorn_and_beat_only(tmp_path, stack_env):
    env, _smtp = stack_env
    stack = Stack(tmp_path, env)
    stack.start("--without-worker")
    try:

        def beat_alive():
            status, _headers, body = stack.get(
                "/health/ready/", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            checks = json.loads(body)["checks"]
            return (status, checks) if checks["beat"]["ok"] else None

        status, checks = stack.wait_for("beat's heartbeat", beat_alive, START_SECONDS)
        output = stack.output()
        stack.process.send_signal(signal.SIGTERM)
        code = stack.process.wait(timeout=STOP_SECONDS)
    finally:
        if stack.process.poll() is None:
            stack.process.kill()
        stack.process.wait()
        _kill_marked(env[MARKER])

    assert re.search(r"web\s+pid \d+", output), output
    assert re.search(r"beat\s+pid \d+", output), output
    assert not re.search(r"^\s*worker\s+pid", output, re.MULTILINE), output
    # Not ready without a worker: the checks say which part is missing.
    assert status == 503
    assert not checks["worker"]["ok"]
    assert code == 0, stack.output()
    assert "beat stopped (exit code 0)" in stack.output()


def _wait_until_ready(stack):
    def is_ready():
        status, _headers, body = stack.get(
            "/health/ready/", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        return json.loads(body) if status == 200 else None

    return stack.wait_for("/health/ready/ to say ready", is_ready, START_SECONDS)


def _run_it(stack, smtp):
    ready = _wait_until_ready(stack)
    assert ready["status"] == "ready"
    assert all(check["ok"] for check in ready["checks"].values()), ready
    output = stack.output()
    for name in ("web", "worker", "beat"):
        assert re.search(rf"{name}\s+pid \d+ .*; logs to .*{name}\.log", output), output
    status, _headers, _body = stack.get("/health/")
    assert status == 200

    # A portal user asks for a password reset; the worker decides, and sends it.
    _status, _headers, page = stack.get("/p/acme/forgot-password/")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
    status, headers, _page = stack.post(
        "/p/acme/forgot-password/",
        {"csrfmiddlewaretoken": token, "email": "grace@example.com"},
    )
    assert status == 200
    request_id = headers["X-Request-ID"]
    [message] = stack.wait_for("the reset email", lambda: smtp.messages, 20)
    assert message["To"] == "grace@example.com"
    body = message.get_body(preferencelist=("plain",)).get_content()
    secret = re.search(r"/p/acme/reset/([\w-]+)/", body).group(1)

    # The worker's log lines of that email carry the request's id; every line is JSON. (The
    # batch sender's task, handed over when the request's transaction commits, sends it.)
    worker_lines = [
        json.loads(line)
        for line in (stack.log_dir / "worker.log").read_text().splitlines()
        if line.startswith("{")
    ]
    assert any(
        line.get("request_id") == request_id
        and any(task in (line.get("action") or "") for task in ("send_outbox_email", "send_due"))
        for line in worker_lines
    ), worker_lines[-10:]
    # No banner among them (Celery prints an ASCII-art one unless told to be quiet).
    assert "-------------- celery@" not in (stack.log_dir / "worker.log").read_text()
    for name in ("worker", "beat"):
        lines = (stack.log_dir / f"{name}.log").read_text().splitlines()
        assert [line for line in lines if line.strip() and not line.startswith("{")] == []
    assert "LocalTime ->" not in (stack.log_dir / "beat.log").read_text()
    # The link is in the email only.
    assert secret not in stack.logs()

    # The worker's counters reach /metrics through the shared multiprocess directory.
    def sent_counted():
        _status, _headers, body = stack.get(
            "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        return b'portal_admin_emails_sent_total{kind="password_reset"} 1.0' in body

    stack.wait_for("the sent email in /metrics", sent_counted, 10)


def _stop_it(stack):
    pids = [int(pid) for pid in re.findall(r"pid (\d+)", stack.output())]
    asked = time.monotonic()
    stack.process.send_signal(signal.SIGTERM)
    try:
        code = stack.process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        stack.fail(f"run.py production did not stop within {STOP_SECONDS} s of SIGTERM")
    took = time.monotonic() - asked
    output = stack.output()
    assert code == 0, output
    for name in ("web", "worker", "beat"):
        assert f"{name} stopped (exit code 0)" in output, output
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"pid {pid} still runs"
    return took


# --- Refusals: no service needed ---


def _refusal(tmp_path, **overrides):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "CELERY_BROKER_URL")
    }
    env.update(overrides)
    result = subprocess.run(
        [sys.executable, "run.py", "production"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result.returncode, result.stderr


def test_production_refuses_sqlite(tmp_path):
    code, said = _refusal(
        tmp_path,
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
    )

    assert code != 0
    assert "DATABASE_URL must name a PostgreSQL database, e.g. DATABASE_URL=postgres://" in said
    assert "CELERY_BROKER_URL" not in said


def test_production_refuses_to_run_without_a_broker(tmp_path):
    code, said = _refusal(
        tmp_path, DATABASE_URL="postgres://postgres@127.0.0.1:5432/x", CELERY_BROKER_URL=""
    )

    assert code != 0
    assert "CELERY_BROKER_URL must name Redis, e.g. CELERY_BROKER_URL=redis://" in said
    assert "Set them in the environment or in .env (see .env.example)." in said


def test_production_says_when_nothing_answers_at_the_database(tmp_path):
    code, said = _refusal(
        tmp_path,
        DATABASE_URL="postgres://postgres@127.0.0.1:9/nothing_here",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
        SECRET_KEY="x" * 50,
    )

    assert code != 0
    assert "Nothing answers at 127.0.0.1:9, the PostgreSQL of DATABASE_URL" in said
    assert "Traceback" not in said


def _start_refused(env):
    """run.py production, expected to stop before it starts anything."""
    return subprocess.run(
        [sys.executable, "run.py", "production", "--bind", env["BIND"]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_settings_that_fail_the_deploy_checks_stop_the_start(tmp_path, stack_env):
    env, _smtp = stack_env
    del env["DEPLOY_CHECKS"]
    result = _start_refused(env)

    assert result.returncode != 0
    assert "accounts.E002" in result.stderr + result.stdout  # links to http://127.0.0.1
    assert "not fit for production" in result.stderr
    assert "Migrating the database" not in result.stdout


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_database_that_is_not_there_yet_is_one_sentence(tmp_path, stack_env):
    env, _smtp = stack_env
    env["DATABASE_URL"] = env["DATABASE_URL"].rsplit("/", 1)[0] + "/portal_admin_not_created"
    result = _start_refused(env)

    assert result.returncode != 0
    assert "PostgreSQL has no database portal_admin_not_created. Create it first" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_second_stack_on_the_same_run_directory_is_refused(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; sys.path.insert(0, sys.argv[1]); import run; "
            "lock = run._only_one_stack(run.Path(sys.argv[2])); print('held', flush=True); "
            "time.sleep(30)",
            str(ROOT),
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        second = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; sys.path.insert(0, sys.argv[1]); import run; "
                "run._only_one_stack(run.Path(sys.argv[2]))",
                str(ROOT),
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        holder.kill()
        holder.wait()

    assert second.returncode != 0
    assert f"Another `run.py production` (pid {holder.pid}) runs from" in second.stderr
