"""Production's gunicorn (gunicorn.conf.py) must not write a portal link's secret to its access
log. A real gunicorn serves real link pages here; then its log file is read."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "gunicorn.conf.py"
# Only a guard against a hung start; the test asserts on the log, never on timing.
START_DEADLINE_SECONDS = 60

# Migrates the throwaway database and issues a magic link and an invitation for one user; the
# secrets come back on stdout, as an email would carry them.
SEED = """
import json
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from accounts import tokens
from accounts.models import TokenPurpose
from tests.factories import PortalAccountFactory, PortalUserFactory
user = PortalUserFactory(portal_account=PortalAccountFactory(slug="acme"))
print(json.dumps({
    "magic": tokens.issue(user, TokenPurpose.MAGIC_LINK),
    "activate": tokens.issue(user, TokenPurpose.ACTIVATION),
    "link": tokens.issue(user, TokenPurpose.LOGIN_EMAIL),
}))
"""


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_listening(process, port, error_log):
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited at start:\n{error_log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"gunicorn did not start listening:\n{error_log.read_text()}")


# Production settings, except that pages render without a collectstatic run (as in the other
# tests, see tests/conftest.py).
TEST_SETTINGS = """
from portal_admin.settings import *  # noqa: F403

STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
"""


@pytest.fixture
def server_env(tmp_path):
    (tmp_path / "gunicorn_test_settings.py").write_text(TEST_SETTINGS)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "GUNICORN_CMD_ARGS")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="gunicorn_test_settings",
        SECRET_KEY="gunicorn-test-secret-key",
        DEBUG="false",
        SECURE_SSL_REDIRECT="false",
        ALLOWED_HOSTS="127.0.0.1",
        # A file of its own, never the shared database: gunicorn is a separate process.
        DATABASE_URL=f"sqlite:///{tmp_path / 'gunicorn.sqlite3'}",
        MEDIA_ROOT=str(tmp_path / "media"),
        # One worker is enough to serve the requests, and shows WEB_CONCURRENCY is honoured.
        WEB_CONCURRENCY="1",
        PYTHONPATH=os.pathsep.join([str(ROOT), str(tmp_path)]),
    )
    return env


def test_the_access_log_never_holds_a_portal_link_secret(tmp_path, server_env):
    seeded = subprocess.run(
        [sys.executable, "-c", SEED],
        cwd=ROOT,
        env=server_env,
        capture_output=True,
        text=True,
        check=True,
    )
    secrets = json.loads(seeded.stdout.strip().splitlines()[-1])

    port = _free_port()
    access_log, error_log = tmp_path / "access.log", tmp_path / "error.log"
    command = [sys.executable, "-m", "gunicorn", "-c", str(CONFIG), "portal_admin.wsgi"]
    command += ["--bind", f"127.0.0.1:{port}"]
    command += ["--access-logfile", str(access_log), "--error-logfile", str(error_log)]
    # The control socket's default path is per user: a test must not take over a running one's.
    command += ["--no-control-socket"]
    server = subprocess.Popen(command, cwd=ROOT, env=server_env)
    try:
        _wait_until_listening(server, port, error_log)
        base = f"http://127.0.0.1:{port}"
        statuses = {}
        for kind, secret in secrets.items():
            request = urllib.request.Request(
                f"{base}/p/acme/{kind}/{secret}/",
                # A page reached from an opened link names the link in its Referer.
                headers={"Referer": f"{base}/p/acme/{kind}/{secret}/"},
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                statuses[kind] = response.status
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)

    # The links are live: each page rendered (its secret was right), and was logged.
    assert statuses == {"magic": 200, "activate": 200, "link": 200}
    log = access_log.read_text()
    for kind, secret in secrets.items():
        assert secret not in log
        assert f'"GET /p/acme/{kind}/[secret]/ HTTP/1.1" 200' in log
        assert f'"{base}/p/acme/{kind}/[secret]/"' in log
    assert not any(secret in error_log.read_text() for secret in secrets.values())


def _config(monkeypatch, web_concurrency):
    if web_concurrency is None:
        monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    else:
        monkeypatch.setenv("WEB_CONCURRENCY", web_concurrency)
    settings = {}
    exec(CONFIG.read_text(), settings)  # as gunicorn reads it
    return settings


def test_worker_count_follows_the_cores_unless_web_concurrency_says(monkeypatch):
    assert _config(monkeypatch, "3")["workers"] == 3
    assert _config(monkeypatch, None)["workers"] == 2 * len(os.sched_getaffinity(0)) + 1
