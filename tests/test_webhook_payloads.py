"""What a receiver gets is what the README and the OpenAPI schema say: the README's
verification code, run as printed, accepts a real delivery and refuses a tampered, re-keyed or
stale one; every event type's real payload is valid against the schema's `webhooks` section."""

import re
from datetime import timedelta
from io import StringIO
from pathlib import Path

import jsonschema_rs
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts import lifecycle
from accounts.models import OutboxEmail, UserType
from api.openapi import SCHEMA
from mail.bounces import record_bounce
from tests.factories import PASSWORD, ContactFactory, RoleFactory
from tests.samples import sample_path
from tests.webhook_receiver import Receiver
from webhooks import tasks
from webhooks.models import Delivery, Endpoint, EventType, new_secret

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_verifier():
    """The README's Python example, as printed (the first python block of its Webhooks part)."""
    text = README.read_text()
    section = text[text.index("## Webhooks") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    return namespace["verify_webhook"]


def test_the_readme_code_verifies_a_real_delivery(
    account, partner_role, technician, settings, monkeypatch
):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    verify = readme_verifier()
    contact = ContactFactory(portal_account=account, email="lee@partner.example")
    with Receiver([200]) as receiver:
        hook = Endpoint.objects.create(
            portal_account=account, url=receiver.url, events=EventType.values
        )
        lifecycle.invite(
            account, user_type=UserType.PARTNER, role=partner_role, by=technician, contact=contact
        )
        assert tasks.deliver_due.apply().get() == 1

    ((request),) = receiver.requests
    headers, body = request["headers"], request["body"]
    assert verify(hook.secret, headers, body)
    assert not verify(hook.secret, headers, body.replace(b"lee@", b"eve@"))
    assert not verify(new_secret(), headers, body)
    assert not verify(hook.secret, {**headers, "webhook-id": "evt_" + "0" * 32}, body)
    later = timezone.now() + timedelta(minutes=6)
    monkeypatch.setattr("time.time", lambda: later.timestamp())
    assert not verify(hook.secret, headers, body)


def test_every_event_types_payload_matches_the_openapi_webhooks_section(
    sample_world, technician, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    account = sample_world
    Endpoint.objects.create(
        portal_account=account, url="https://crm.example.com/", events=EventType.values
    )
    role = RoleFactory(portal_account=account, name="Webhook Partner")
    other = RoleFactory(portal_account=account, name="Webhook Reseller")
    contact = ContactFactory(portal_account=account, email="wes@partner.example")
    user = lifecycle.invite(
        account, user_type=UserType.PARTNER, role=role, by=technician, contact=contact
    )
    lifecycle.activate(user, PASSWORD)
    Client().post("/p/acme/login/", {"email": user.email, "password": PASSWORD})
    lifecycle.change_role(user, other, by=technician)
    lifecycle.disable(user, by=technician)
    lifecycle.enable(user, by=technician)
    invitation = OutboxEmail.objects.filter(user=user).first()
    record_bounce(invitation, "550 5.1.1 User unknown")
    lifecycle.delete(user, by=technician)
    call_command(
        "import_portal_users",
        "acme",
        str(sample_path("portal-users-template.csv")),
        stdout=StringIO(),
    )

    seen = set()
    for delivery in Delivery.objects.all():
        operation = SCHEMA["webhooks"][delivery.event_type]["post"]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        validator = jsonschema_rs.validator_for({**schema, "components": SCHEMA["components"]})
        errors = [error.message for error in validator.iter_errors(delivery.payload)]
        assert errors == [], (delivery.event_type, delivery.payload)
        seen.add(delivery.event_type)
        if "user" in delivery.payload["data"]:  # and the schema does look inside
            wrong = {**delivery.payload["data"]["user"], "state": "gone"}
            assert not validator.is_valid({**delivery.payload, "data": {"user": wrong}})
    assert seen == set(EventType.values)
    assert set(SCHEMA["webhooks"]) == set(EventType.values)
