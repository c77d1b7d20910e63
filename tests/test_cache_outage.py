"""With the shared cache (Redis) unreachable, signing in keeps working: the throttle counts in
the process meanwhile instead of answering 500."""

import pytest
from django.core import mail
from django.test import override_settings

from tests.factories import PASSWORD, PortalUserFactory

UNREACHABLE = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1: refused at once
    }
}


@pytest.fixture
def alan(account, partner_role):
    return PortalUserFactory(portal_account=account, role=partner_role, email="alan@example.com")


def test_portal_sign_in_and_email_requests_work_without_the_cache(
    client, alan, django_capture_on_commit_callbacks
):
    with override_settings(CACHES=UNREACHABLE):
        signed_in = client.post("/p/acme/login/", {"email": alan.email, "password": PASSWORD})
        with django_capture_on_commit_callbacks(execute=True):
            asked = client.post("/p/acme/login/email-link/", {"email": alan.email})
    assert signed_in.status_code == 302
    assert asked.status_code == 200
    assert [message.to for message in mail.outbox] == [[alan.email]]


def test_console_sign_in_works_and_is_still_throttled_without_the_cache(client, technician):
    with override_settings(CACHES=UNREACHABLE):
        for _ in range(5):
            client.post("/sign-in/", {"username": technician.email, "password": "wrong"})
        refused = client.post("/sign-in/", {"username": technician.email, "password": PASSWORD})
    assert refused.status_code == 429
