"""Webhooks: every change an endpoint subscribes to becomes a delivery in the change's own
transaction, and the worker's task sends it, signed, to a real HTTP server on localhost;
failures are retried with backoff on a moved clock, and private addresses are refused."""

import json
import logging
import socket
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django.utils import timezone

from accounts import lifecycle
from accounts.models import AuditEvent, UserState, UserType
from imports.models import ImportJob
from tests.factories import PASSWORD, ContactFactory, PortalUserFactory, RoleFactory
from tests.samples import sample_path
from tests.webhook_receiver import Receiver
from webhooks import delivery, endpoints, signing, tasks
from webhooks.models import Delivery, Endpoint, EventType

ALL = EventType.values


@pytest.fixture(autouse=True)
def _loopback_allowed(settings):
    """The local receiver is on loopback, as a development setup's would be."""
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True


def endpoint_for(account, url="https://crm.example.com/hooks", events=ALL, **extra):
    return Endpoint.objects.create(portal_account=account, url=url, events=list(events), **extra)


@pytest.fixture
def pia(account, partner_role):
    contact = ContactFactory(
        portal_account=account,
        name="Pia Partner",
        email="pia@partner.example",
        salesforce_id="0035g00000AbCdEAAV",
    )
    return PortalUserFactory(
        portal_account=account,
        role=partner_role,
        contact=contact,
        email=contact.email,
        name=contact.name,
    )


def deliveries(**filters):
    return list(Delivery.objects.filter(**filters).order_by("id"))


def send_due():
    return tasks.deliver_due.apply().get()


# --- Written with the change ---


def test_a_change_writes_its_delivery_naming_the_contact_and_salesforce_ids(
    account, pia, technician, django_capture_on_commit_callbacks
):
    hook = endpoint_for(account)
    with django_capture_on_commit_callbacks() as callbacks:
        lifecycle.disable(pia, by=technician)

    (row,) = deliveries()
    assert (row.endpoint, row.event_type, row.status) == (hook, "user.disabled", "pending")
    body = row.payload
    assert body["id"] == row.event_id
    assert body["id"].startswith("evt_")
    assert body["type"] == "user.disabled"
    assert body["portal_account"] == "acme"
    assert body["occurred_at"].endswith("Z")
    assert body["data"]["user"] == {
        "id": pia.pk,
        "email": "pia@partner.example",
        "name": "Pia Partner",
        "state": "disabled",
        "role": "Partner User",
        "user_type": "partner",
        "is_account_admin": False,
        "contact_id": pia.contact.contact_id,
        "salesforce_id": "0035g00000AbCdEAAV",
    }
    assert len(callbacks) == 1  # the worker is woken once the change has committed


def test_a_change_that_rolls_back_leaves_no_delivery_and_wakes_nobody(
    account, pia, technician, django_capture_on_commit_callbacks
):
    endpoint_for(account)

    def change_then_fail():
        with transaction.atomic():
            lifecycle.disable(pia, by=technician)
            raise RuntimeError("something after the change failed")

    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(RuntimeError):
        change_then_fail()

    assert deliveries() == []
    assert callbacks == []
    pia.refresh_from_db()
    assert pia.state == UserState.ENABLED


def test_only_active_endpoints_of_the_account_that_want_the_event_get_it(
    account, other_account, pia, technician
):
    wants = endpoint_for(account, events=["user.disabled"])
    endpoint_for(account, events=["user.enabled"])
    endpoint_for(account, events=["user.disabled"], active=False)
    endpoint_for(other_account, events=ALL)

    lifecycle.disable(pia, by=technician)

    assert [d.endpoint for d in deliveries()] == [wants]


def test_each_lifecycle_verb_is_its_event(account, partner_role, technician):
    endpoint_for(account)
    other_role = RoleFactory(portal_account=account, name="Reseller Admin")
    contact = ContactFactory(portal_account=account, email="lee@partner.example")

    user = lifecycle.invite(
        account, user_type=UserType.PARTNER, role=partner_role, by=technician, contact=contact
    )
    lifecycle.activate(user, "a-long-new-password-1")
    lifecycle.change_role(user, other_role, by=technician)
    lifecycle.disable(user, by=technician)
    lifecycle.enable(user, by=technician)
    lifecycle.delete(user, by=technician)

    rows = deliveries()
    assert [r.event_type for r in rows] == [
        "user.invited",
        "user.activated",
        "user.role_changed",
        "user.disabled",
        "user.enabled",
        "user.deleted",
    ]
    states = [r.payload["data"]["user"]["state"] for r in rows]
    assert states == ["unconfirmed", "enabled", "enabled", "disabled", "enabled", "deleted"]
    assert rows[2].payload["data"]["user"]["role"] == "Reseller Admin"
    assert rows[2].payload["data"]["previous"] == {"role": "Partner User", "user_type": "partner"}
    assert rows[-1].payload["data"]["user"]["id"] == user.pk  # the user row itself is gone
    assert len({r.event_id for r in rows}) == 6


def test_a_portal_sign_in_is_user_signed_in(account, pia):
    endpoint_for(account, events=["user.signed_in"])

    response = Client().post("/p/acme/login/", {"email": pia.email, "password": PASSWORD})

    assert response.status_code == 302
    (row,) = deliveries()
    assert row.payload["data"]["user"]["id"] == pia.pk
    assert row.payload["data"]["sign_in"] == {"door": "portal", "method": "password"}


def test_an_import_is_one_delivery_per_new_user_and_one_when_it_finishes(
    sample_world, technician, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    hook = endpoint_for(sample_world, events=["user.invited", "import.finished"])

    call_command(
        "import_portal_users",
        "acme",
        str(sample_path("portal-users-mixed.csv")),
        "--as",
        technician.email,
        stdout=StringIO(),
    )

    job = ImportJob.objects.get()
    invited = deliveries(event_type="user.invited", endpoint=hook)
    assert len(invited) == job.created == 7
    assert all(d.payload["data"]["user"]["contact_id"] for d in invited)
    (finished,) = deliveries(event_type="import.finished")
    assert finished.payload["data"]["import"] | {"started_at": None, "finished_at": None} == {
        "id": job.pk,
        "target": "portal_users",
        "status": "done",
        "file_name": job.original_filename,
        "total_rows": 15,
        "processed": 15,
        "created": 7,
        "failed": 8,
        "started_at": None,
        "finished_at": None,
        "error": None,
    }


# --- Sent to a real receiver ---


def test_the_worker_delivers_a_signed_event_to_a_real_receiver(
    account, pia, technician, django_capture_on_commit_callbacks
):
    with Receiver([200]) as receiver:
        hook = endpoint_for(account, url=receiver.url)
        with django_capture_on_commit_callbacks(execute=True):
            lifecycle.disable(pia, by=technician)  # commits: the task runs (eagerly)

    (request,) = receiver.requests
    (row,) = deliveries()
    assert (row.status, row.attempts, row.response_code, row.last_error) == (
        "delivered",
        1,
        200,
        "",
    )
    assert request["path"] == "/hooks?token=receiver-side-token"
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["content-type"] == "application/json"
    assert headers["webhook-id"] == row.event_id
    assert json.loads(request["body"]) == row.payload
    timestamp = headers["webhook-timestamp"]
    expected = signing.signature(hook.secret, row.event_id, int(timestamp), request["body"])
    assert headers["webhook-signature"] == expected
    # A signature with another secret, or over another body, is not this one.
    assert signing.signature(Endpoint().secret, row.event_id, int(timestamp), request["body"]) != (
        expected
    )


def test_a_500_is_retried_with_backoff_on_a_moved_clock_then_delivered(
    account, pia, technician, monkeypatch, settings
):
    settings.WEBHOOKS_RETRY_BASE_SECONDS = 60
    start = timezone.now()
    with Receiver([500, 503, 200]) as receiver:
        endpoint_for(account, url=receiver.url)
        lifecycle.disable(pia, by=technician)

        send_due()
        (row,) = deliveries()
        assert (row.status, row.attempts, row.response_code) == ("pending", 1, 500)
        assert "answered 500" in row.last_error
        assert start + timedelta(seconds=59) < row.next_attempt_at
        assert row.next_attempt_at < timezone.now() + timedelta(seconds=61)

        assert send_due() == 0  # not due yet: nothing sent
        assert len(receiver.requests) == 1

        monkeypatch.setattr(timezone, "now", lambda: start + timedelta(seconds=61))
        assert tasks.sweep_webhooks.apply().get() is True  # beat finds it due and wakes a worker
        row.refresh_from_db()
        assert (row.status, row.attempts, row.response_code) == ("pending", 2, 503)
        # The wait doubles: 120 s after the second attempt.
        assert row.next_attempt_at == start + timedelta(seconds=61 + 120)

        monkeypatch.setattr(timezone, "now", lambda: start + timedelta(seconds=200))
        send_due()
        row.refresh_from_db()
        assert (row.status, row.attempts, row.response_code, row.last_error) == (
            "delivered",
            3,
            200,
            "",
        )
        assert row.next_attempt_at is None
        # Every attempt carries the same event id, for the receiver to drop repeats.
        assert len({r["headers"]["webhook-id"] for r in receiver.requests}) == 1


def test_after_the_last_attempt_the_delivery_is_failed(
    account, pia, technician, monkeypatch, settings
):
    settings.WEBHOOKS_MAX_ATTEMPTS = 3
    settings.WEBHOOKS_RETRY_BASE_SECONDS = 10
    now = timezone.now()
    with Receiver([500]) as receiver:
        endpoint_for(account, url=receiver.url)
        lifecycle.disable(pia, by=technician)
        for minutes in range(4):
            monkeypatch.setattr(timezone, "now", lambda m=minutes: now + timedelta(minutes=m))
            send_due()

    (row,) = deliveries()
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 3, None)
    assert len(receiver.requests) == 3


def test_the_backoff_is_capped(settings):
    settings.WEBHOOKS_RETRY_BASE_SECONDS = 60
    settings.WEBHOOKS_RETRY_MAX_SECONDS = 600
    waits = [delivery.backoff(n).total_seconds() for n in range(1, 7)]
    assert waits == [60, 120, 240, 480, 600, 600]


def test_a_redirect_is_not_followed(account, pia, technician):
    with Receiver([200]) as elsewhere, Receiver([302], location=elsewhere.url) as receiver:
        endpoint_for(account, url=receiver.url)
        lifecycle.disable(pia, by=technician)
        send_due()

    (row,) = deliveries()
    assert (row.status, row.response_code) == ("pending", 302)
    assert elsewhere.requests == []


def test_a_rotated_secret_signs_beside_the_old_one_for_a_day(account, pia, technician, monkeypatch):
    with Receiver([200]) as receiver:
        hook = endpoint_for(account, url=receiver.url)
        old = hook.secret
        hook = endpoints.rotate_secret(hook, by=technician)
        lifecycle.disable(pia, by=technician)
        send_due()
        lifecycle.enable(pia, by=technician)
        monkeypatch.setattr(timezone, "now", lambda: hook.previous_secret_until + timedelta(1))
        send_due()

    first, second = receiver.requests
    signatures = first["headers"]["webhook-signature"].split()
    stamp = int(first["headers"]["webhook-timestamp"])
    event_id = first["headers"]["webhook-id"]
    assert signatures == [
        signing.signature(hook.secret, event_id, stamp, first["body"]),
        signing.signature(old, event_id, stamp, first["body"]),
    ]
    assert len(second["headers"]["webhook-signature"].split()) == 1


# --- Never inward ---


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/hooks",
        "http://10.0.0.7:{port}/hooks",
        "http://[::1]:{port}/hooks",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]:{port}/hooks",
    ],
)
def test_private_and_loopback_targets_are_refused_in_production(
    account, pia, technician, settings, url
):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    settings.DEBUG = True  # http:// allowed, so that the address is what refuses it
    with Receiver([200]) as receiver:
        endpoint_for(account, url=url.format(port=receiver.port))
        lifecycle.disable(pia, by=technician)
        send_due()

    (row,) = deliveries()
    assert (row.status, row.attempts, row.response_code) == ("pending", 1, None)
    assert "private, loopback or link-local" in row.last_error
    assert receiver.requests == []


def test_a_name_that_resolves_to_a_private_address_is_refused(
    account, pia, technician, settings, monkeypatch
):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    resolved = []
    real = socket.getaddrinfo

    def fake_dns(host, *args, **kwargs):
        if host == "crm.example.com":
            resolved.append(host)
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 443)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", 443)),
            ]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_dns)
    endpoint_for(account, url="https://crm.example.com/hooks")
    lifecycle.disable(pia, by=technician)
    send_due()

    (row,) = deliveries()
    assert resolved == ["crm.example.com"]
    assert row.response_code is None
    assert "crm.example.com resolves to a private" in row.last_error
    assert "10.1.2.3" not in row.last_error  # the account's admins read it: no inside address


def test_the_allow_setting_opens_loopback_but_never_link_local(settings):
    from webhooks import targets

    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    assert targets.allowed("127.0.0.1")
    assert targets.allowed("10.0.0.1")
    assert not targets.allowed("169.254.169.254")
    assert not targets.allowed("224.0.0.1")
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    assert not targets.allowed("127.0.0.1")
    assert not targets.allowed("::1")
    assert not targets.allowed("192.168.1.1")
    assert not targets.allowed("100.64.0.1")
    assert targets.allowed("93.184.215.14")


# --- Secrets stay out of logs and the audit log ---


def test_secrets_and_urls_stay_out_of_logs_and_the_audit_log(
    account, pia, technician, caplog, monkeypatch
):
    caplog.set_level(logging.DEBUG)
    with Receiver([500, 200]) as receiver:
        hook = endpoints.create(
            account, url=receiver.url, events=ALL, by=technician, description="CRM"
        )
        hook = endpoints.rotate_secret(hook, by=technician)
        lifecycle.disable(pia, by=technician)
        send_due()
        later = timezone.now() + timedelta(hours=1)
        monkeypatch.setattr(timezone, "now", lambda: later)
        send_due()

    logged = caplog.text + " ".join(
        json.dumps([e.detail, e.before, e.after]) for e in AuditEvent.objects.all()
    )
    assert "webhook delivery" in caplog.text.lower()
    for secret in (hook.secret, hook.previous_secret, "receiver-side-token"):
        assert secret not in logged


def test_production_is_warned_when_private_targets_are_open(settings):
    from webhooks.checks import private_targets_closed

    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    assert private_targets_closed(None) == []
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    assert [w.id for w in private_targets_closed(None)] == ["webhooks.W001"]


def test_a_delivery_whose_endpoint_was_deleted_after_the_claim_is_skipped(account, pia, technician):
    hook = endpoint_for(account)
    lifecycle.disable(pia, by=technician)
    (claimed,) = delivery.claim_due(10)
    endpoints.delete(hook, by=technician)

    assert delivery.send(claimed) is None
