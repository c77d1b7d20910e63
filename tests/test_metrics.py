"""/metrics: Prometheus's text format from prometheus_client, for the monitoring token or an
allowed address only. Counters (requests, emails, task durations) are kept by the processes
that see the events; the outbox backlog, import rows, refused sign-ins and heartbeat ages are
read from the database at scrape time.

Counters live in this test process for the whole run, so each test compares a value before and
after what it does."""

import ipaddress
import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from accounts import bulk_invites, lifecycle
from accounts.models import EmailKind, OutboxEmail, UserType
from imports.models import ImportJob
from mail import delivery, outbox, tasks
from mail.tasks import requeue_unsent_emails
from operations.models import Heartbeat
from tests.factories import PASSWORD, ContactFactory, PortalUserFactory

TOKEN = "metrics-token-for-tests-0123456789"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _token(settings):
    settings.MONITORING_TOKEN = TOKEN
    settings.METRICS_ALLOWED_IPS = []


def scrape(client):
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.content
    return response


def samples(client):
    """{(sample name, frozenset of labels): value} of one scrape."""
    text = scrape(client).content.decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scraped, metric, /, **labels):
    return scraped.get((metric, frozenset(labels.items())), 0.0)


# --- Who may scrape ---


def test_without_the_token_or_an_allowed_address_it_is_403(client, db):
    response = client.get("/metrics")

    assert response.status_code == 403
    assert b"MONITORING_TOKEN" in response.content
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403


def test_a_signed_in_admin_is_no_scraper(admin_client):
    assert admin_client.get("/metrics").status_code == 403


def test_the_token_gets_prometheus_text(client, db):
    response = scrape(client)

    assert response["Content-Type"].startswith("text/plain; version=")
    assert "no-store" in response["Cache-Control"]
    assert b"# TYPE portal_admin_outbox_backlog gauge" in response.content


def test_an_allowed_address_needs_no_token(client, db, settings):
    settings.METRICS_ALLOWED_IPS = [ipaddress.ip_network("10.1.0.0/16")]

    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.2.0.1").status_code == 403


def test_behind_a_proxy_the_forwarded_address_counts(client, db, settings):
    settings.METRICS_ALLOWED_IPS = [ipaddress.ip_network("10.1.2.3/32")]
    settings.TRUSTED_PROXY_HOPS = 1

    allowed = client.get("/metrics", REMOTE_ADDR="10.9.9.9", HTTP_X_FORWARDED_FOR="10.1.2.3")
    # The proxy's own address is not the scraper's.
    refused = client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="192.0.2.1")

    assert (allowed.status_code, refused.status_code) == (200, 403)


def test_prometheus_may_scrape_by_the_machines_address(client, db, settings):
    settings.ALLOWED_HOSTS = ["admin.example.com"]
    settings.SECURE_SSL_REDIRECT = True

    response = client.get(
        "/metrics", HTTP_HOST="10.0.0.7:8000", headers={"Authorization": f"Bearer {TOKEN}"}
    )

    assert response.status_code == 200


def test_only_get(client, db):
    response = client.post("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 405


# --- Requests ---


def test_requests_are_counted_by_view_method_and_status_with_their_latency(
    admin_client, account, client
):
    name = "portal_admin_http_request_duration_seconds"
    before = samples(client)
    admin_client.get("/accounts/")
    admin_client.get("/accounts/acme/")
    admin_client.get("/accounts/nope/")
    after = samples(client)

    ok = {"view": "portal-accounts", "method": "GET", "status": "200"}
    assert value(after, f"{name}_count", **ok) == value(before, f"{name}_count", **ok) + 1
    assert value(after, f"{name}_sum", **ok) > value(before, f"{name}_sum", **ok)
    bucket = {**ok, "le": "+Inf"}
    assert value(after, f"{name}_bucket", **bucket) == value(after, f"{name}_count", **ok)
    missing = {"view": "dashboard", "method": "GET", "status": "404"}
    assert value(after, f"{name}_count", **missing) == value(before, f"{name}_count", **missing) + 1


# --- Emails ---


def test_emails_are_counted_queued_sent_failed_and_deferred_by_kind(
    client, account, partner_role, technician, settings, django_capture_on_commit_callbacks
):
    before = samples(client)
    contact = ContactFactory(portal_account=account)
    # Counted when the change commits; the test sends the rows itself, not a worker woken then.
    with mock.patch.object(tasks, "wake"), django_capture_on_commit_callbacks(execute=True):
        user = lifecycle.invite(
            account, user_type=UserType.PARTNER, role=partner_role, by=technician, contact=contact
        )
        failing = outbox.queue_email(
            PortalUserFactory(portal_account=account), EmailKind.LOGIN_LINK
        )
        first, second = (
            outbox.queue_email(PortalUserFactory(portal_account=account), EmailKind.LOGIN_LINK)
            for _ in range(2)
        )
    invitation = OutboxEmail.objects.get(user=user)
    assert delivery.deliver(invitation.pk) is True

    settings.EMAIL_BACKEND = "tests.test_metrics.RefusingBackend"
    with pytest.raises(delivery.SendFailed):
        delivery.deliver(failing.pk)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

    # At one email a minute, the account's second login link waits for its turn.
    settings.OUTBOX_RATE_PER_ACCOUNT_PER_MINUTE = 1
    assert delivery.deliver(first.pk, pace=True) is True
    with pytest.raises(delivery.SendDeferred):
        delivery.deliver(second.pk, pace=True)
    after = samples(client)

    def grew(name, kind):
        return value(after, name, kind=kind) - value(before, name, kind=kind)

    assert grew("portal_admin_emails_queued_total", "invitation") == 1
    assert grew("portal_admin_emails_sent_total", "invitation") == 1
    assert grew("portal_admin_emails_queued_total", "login_link") == 3
    assert grew("portal_admin_emails_failed_total", "login_link") == 1
    assert grew("portal_admin_emails_sent_total", "login_link") == 1
    assert grew("portal_admin_emails_deferred_total", "login_link") == 1
    assert len(mail.outbox) == 2


class RefusingBackend:
    def __init__(self, *args, **kwargs):
        pass

    def open(self):
        raise ConnectionRefusedError("the SMTP server is down")

    def close(self):
        pass


@transaction.atomic
def _queue_and_fail(user):
    outbox.queue_email(user, EmailKind.LOGIN_LINK)
    raise RuntimeError("the change fails after its email was written")


def test_an_email_rolled_back_with_its_change_is_not_counted(
    client, account, django_capture_on_commit_callbacks
):
    user = PortalUserFactory(portal_account=account)
    before = samples(client)
    with mock.patch.object(tasks, "wake"), django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError):
            _queue_and_fail(user)
        outbox.queue_email(user, EmailKind.LOGIN_CODE)
    after = samples(client)

    name = "portal_admin_emails_queued_total"
    assert value(after, name, kind="login_link") == value(before, name, kind="login_link")
    assert value(after, name, kind="login_code") - value(before, name, kind="login_code") == 1


def test_emails_queued_in_bulk_count_when_their_transaction_commits(
    client, account, partner_role, technician, django_capture_on_commit_callbacks
):
    contacts = [ContactFactory(portal_account=account) for _ in range(3)]
    before = samples(client)
    with django_capture_on_commit_callbacks(execute=True):
        bulk_invites.invite_many(
            account,
            [(contact, partner_role) for contact in contacts],
            by=technician,
            send_email=True,
        )
    after = samples(client)

    name = "portal_admin_emails_queued_total"
    assert value(after, name, kind="invitation") - value(before, name, kind="invitation") == 3


def test_the_outbox_backlog_its_oldest_email_and_failed_emails_are_read_at_scrape_time(
    client, account
):
    rows = [
        outbox.queue_email(PortalUserFactory(portal_account=account), EmailKind.LOGIN_LINK)
        for _ in range(3)
    ]
    OutboxEmail.objects.filter(pk=rows[0].pk).update(
        created_at=timezone.now() - timedelta(minutes=20)
    )
    OutboxEmail.objects.filter(pk=rows[2].pk).update(status=OutboxEmail.Status.FAILED)

    scraped = samples(client)

    assert value(scraped, "portal_admin_outbox_backlog") == 2
    assert 20 * 60 <= value(scraped, "portal_admin_outbox_oldest_pending_age_seconds") < 21 * 60
    assert value(scraped, "portal_admin_outbox_failed") == 1


def test_an_empty_outbox_has_no_age(client, db):
    scraped = samples(client)

    assert value(scraped, "portal_admin_outbox_backlog") == 0
    assert value(scraped, "portal_admin_outbox_oldest_pending_age_seconds") == 0


# --- Imports, sign-ins, heartbeats, tasks ---


def test_import_rows_applied_and_failed_by_target(client, account, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path
    for target, processed, failed, status in (
        (ImportJob.Target.PORTAL_USERS, 10, 3, ImportJob.Status.DONE),
        (ImportJob.Target.PORTAL_USERS, 5, 0, ImportJob.Status.RUNNING),
        (ImportJob.Target.CONTACTS, 4, 1, ImportJob.Status.DONE),
    ):
        ImportJob.objects.create(
            portal_account=account, target=target, processed=processed, failed=failed, status=status
        )

    scraped = samples(client)

    assert value(scraped, "portal_admin_import_rows_applied_total", target="portal_users") == 12
    assert value(scraped, "portal_admin_import_rows_failed_total", target="portal_users") == 3
    assert value(scraped, "portal_admin_import_rows_applied_total", target="contacts") == 3
    assert value(scraped, "portal_admin_imports_running") == 1


def test_failed_sign_ins_and_lockouts_of_the_last_minutes_by_door(client, mssp_admin, settings):
    settings.SIGN_IN_MAX_FAILURES = 2
    for _ in range(3):
        client.post("/sign-in/", {"username": mssp_admin.email, "password": "wrong"})
    client.post("/sign-in/", {"username": mssp_admin.email, "password": PASSWORD})

    scraped = samples(client)

    assert value(scraped, "portal_admin_sign_in_failures_recent", door="console") == 2
    assert value(scraped, "portal_admin_sign_in_lockouts_recent", door="console") == 2


def test_heartbeat_ages_of_running_workers_and_beat(client, db):
    now = timezone.now()
    Heartbeat.objects.create(
        name="celery@web-1",
        kind="worker",
        started_at=now,
        seen_at=now - timedelta(seconds=30),
    )
    Heartbeat.objects.create(
        name="celery@old", kind="worker", started_at=now, seen_at=now, stopped_at=now
    )

    scraped = samples(client)

    age = value(scraped, "portal_admin_heartbeat_age_seconds", kind="worker", name="celery@web-1")
    assert 30 <= age < 40
    assert (
        "portal_admin_heartbeat_age_seconds",
        frozenset({("kind", "worker"), ("name", "celery@old")}),
    ) not in scraped


def test_celery_task_durations_by_task_and_outcome(client, db):
    name = "portal_admin_celery_task_duration_seconds_count"
    labels = {"task": "mail.tasks.requeue_unsent_emails", "state": "SUCCESS"}
    before = value(samples(client), name, **labels)

    requeue_unsent_emails.apply()

    assert value(samples(client), name, **labels) == before + 1


# --- Several processes ---

COUNTING = textwrap.dedent(
    """
    import django
    django.setup()
    from operations import metrics
    metrics.EMAILS_SENT.labels(kind="invitation").inc()
    metrics.observe_request("users", "GET", 200, 0.02)
    """
)


def test_counters_of_several_processes_add_up(tmp_path):
    """As under `run.py production`: gunicorn's and Celery's processes each write their own
    file in PROMETHEUS_MULTIPROC_DIR, and a scrape adds them up."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    env.setdefault("DJANGO_SETTINGS_MODULE", "portal_admin.settings")
    for _ in range(2):
        subprocess.run([sys.executable, "-c", COUNTING], cwd=ROOT, env=env, check=True)

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))

    sent = registry.get_sample_value("portal_admin_emails_sent_total", {"kind": "invitation"})
    requests = registry.get_sample_value(
        "portal_admin_http_request_duration_seconds_count",
        {"view": "users", "method": "GET", "status": "200"},
    )
    assert (sent, requests) == (2, 2)
