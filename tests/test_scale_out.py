"""Scaling out is adding processes. Two machines' worth of processes against one PostgreSQL and
one Redis: `run.py production` (gunicorn with two processes, a Celery worker with two, beat)
and a second gunicorn and Celery worker started as another machine would start them. A CRM
asks both web servers at once for login emails, and for the same invitation twice; an import's
task is handed out twice. Every email reaches the SMTP server exactly once, the invitation
makes one user, and every import row is applied once."""

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.urls import reverse

from accounts.models import OutboxEmail, User, UserKind, UserState
from api.api_tokens import create_token
from imports import tasks as import_tasks
from tests.factories import (
    ContactFactory,
    PortalAccountFactory,
    PortalUserFactory,
    RoleFactory,
    StaffFactory,
)
from tests.test_import_self_healing import (
    assert_every_row_imported_once,
    is_done,
    make_job,
    running,
    seed,
)
from tests.test_outbox_worker import free_port
from tests.test_production_command import ROOT, Stack, _wait_until_ready, stack_env  # noqa: F401

USERS = 60
IMPORT_ROWS = 600


class SecondMachine:
    """gunicorn and a Celery worker, started with the stack's environment on another port."""

    def __init__(self, env, log_dir):
        self.env = {**env, "BIND": f"127.0.0.1:{free_port()}"}
        self.base = f"http://{self.env['BIND']}"
        self.log_dir = log_dir
        self.processes = []

    def start(self):
        self.log_dir.mkdir(parents=True, exist_ok=True)
        commands = {
            "web-2": [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"]
            + ["--workers", "1", "--bind", self.env["BIND"], "portal_admin.wsgi"],
            "worker-2": [sys.executable, "-m", "celery", "-A", "portal_admin", "worker"]
            + ["--loglevel=INFO", "--concurrency=1", "--hostname=second@%h"],
        }
        for name, command in commands.items():
            log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - kept open while it runs
            self.processes.append(
                subprocess.Popen(
                    command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
                )
            )
        return self

    def web_answers(self):
        try:
            with urllib.request.urlopen(self.base + "/health/", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def worker_says(self, text):
        path = self.log_dir / "worker-2.log"
        return path.exists() and text in path.read_text(errors="replace")

    def stop(self):
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def api_post(base, path, secret, body=None):
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body or {}).encode(),
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_two_web_servers_and_two_workers_do_nothing_twice(tmp_path, stack_env):  # noqa: F811
    env, smtp = stack_env
    # The import's files live where this test's settings put them; the stack reads them there.
    env["MEDIA_ROOT"] = str(settings.MEDIA_ROOT)
    import_account, contact_ids = seed(IMPORT_ROWS)
    account = PortalAccountFactory(partner_licenses=USERS + 10)
    role = RoleFactory(portal_account=account, name="Scale Partner", user_type="partner")
    people = [
        PortalUserFactory(portal_account=account, role=role, state=UserState.ENABLED)
        for _ in range(USERS)
    ]
    newcomer = ContactFactory(portal_account=account, email="newcomer@example.com")
    mssp_admin = StaffFactory(kind=UserKind.MSSP_ADMIN)
    _token, secret = create_token(account, "CRM connector", by=mssp_admin)
    job = make_job(import_account, contact_ids)

    stack = Stack(tmp_path, env)
    second = SecondMachine(env, tmp_path / "second")
    try:
        stack.start()
        _wait_until_ready(stack)
        second.start()
        stack.wait_for("the second web server", second.web_answers, 30)
        stack.wait_for("the second worker", lambda: second.worker_says("ready."), 30)

        def login_email(index_and_person):
            index, person = index_and_person
            base = (stack.base, second.base)[index % 2]
            contact_ref = person.contact.contact_id
            path = reverse("api-portal-user-send-login-email", args=[account.slug, contact_ref])
            return api_post(base, path, secret)

        invite_path = reverse("api-portal-user-enable", args=[account.slug, newcomer.contact_id])
        start = threading.Barrier(2)

        def invite(base):
            start.wait()
            return api_post(base, invite_path, secret, {"role": role.name})

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(login_email, enumerate(people)))
            invited = list(pool.map(invite, (stack.base, second.base)))
        assert set(answers) <= {200, 202}, answers
        # One invitation; the other request finds the user there (an answer, never a 500).
        first, second_answer = sorted(invited)
        assert first == 201, invited
        assert second_answer in (200, 409), invited

        # The import's task handed out twice (a redelivery): one run applies each row.
        ticket = running(job)
        assert import_tasks.queue_run(job.pk, ticket)
        assert import_tasks.queue_run(job.pk, ticket)

        expected = USERS + 1  # the login emails and the one invitation
        stack.wait_for(
            f"{expected} emails at the SMTP server", lambda: len(smtp.messages) >= expected, 90
        )
        stack.wait_for("the import to finish", lambda: is_done(job), 90)
        time.sleep(3)  # a second copy, if any, would arrive now
    finally:
        second.stop()
        stack.process.terminate()
        stack.process.wait(timeout=60)

    recipients = Counter(message["To"] for message in smtp.messages)
    assert recipients == Counter([p.email for p in people] + [newcomer.email])
    assert User.objects.filter(contact=newcomer).count() == 1
    assert (
        not OutboxEmail.objects.exclude(status=OutboxEmail.Status.SENT)
        .filter(user__in=people)
        .exists()
    )
    assert_every_row_imported_once(job.pk, import_account, contact_ids)
    # Both machines did some of the work.
    assert second.worker_says("succeeded"), (tmp_path / "second" / "worker-2.log").read_text()
