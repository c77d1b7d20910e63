from datetime import timedelta
from unittest import mock

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from tests.factories import PASSWORD

SIGN_IN = reverse("login")
REFUSED = "Too many failed sign-in attempts. Wait 15 minutes and try again."


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


def sign_in(client, email, password=PASSWORD, ip="10.0.0.1"):
    return client.post(SIGN_IN, {"username": email, "password": password}, REMOTE_ADDR=ip)


def fail(client, email, times, ip="10.0.0.1"):
    for _ in range(times):
        response = sign_in(client, email, "wrong-password", ip=ip)
        assert response.status_code == 200
        assert "Please enter a correct email and password" in response.content.decode()


def test_after_five_failures_for_an_email_even_the_right_password_is_refused(client, technician):
    fail(client, technician.email, 5)

    response = sign_in(client, technician.email)

    assert response.status_code == 429
    assert REFUSED in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_email_counter_spans_ip_addresses_and_letter_case(client, technician):
    for n in range(5):
        fail(client, technician.email.upper(), 1, ip=f"10.0.0.{n}")
    assert sign_in(client, f" {technician.email} ", ip="10.0.0.99").status_code == 429


def test_after_five_failures_from_an_ip_other_emails_are_refused_from_it(
    client, technician, mssp_admin
):
    for n in range(5):
        fail(client, f"guess{n}@mssp.example", 1, ip="10.6.6.6")

    assert sign_in(client, technician.email, ip="10.6.6.6").status_code == 429
    assert sign_in(client, mssp_admin.email, ip="10.7.7.7").status_code == 302


def test_a_refused_attempt_checks_nothing(client, technician):
    fail(client, technician.email, 5)
    with mock.patch("accounts.backends.ConsoleBackend.authenticate") as authenticate:
        assert sign_in(client, technician.email).status_code == 429
    authenticate.assert_not_called()


def test_four_failures_still_let_the_right_password_in(client, technician):
    fail(client, technician.email, 4)
    assert sign_in(client, technician.email).status_code == 302


def test_a_successful_sign_in_clears_the_emails_counter(client, technician):
    fail(client, technician.email, 4)
    assert sign_in(client, technician.email).status_code == 302
    client.post(reverse("logout"))

    fail(client, technician.email, 4, ip="10.0.0.2")
    assert sign_in(client, technician.email, ip="10.0.0.2").status_code == 302


def test_the_refusal_ends_after_the_window(client, technician):
    fail(client, technician.email, 5)
    later = timezone.now() + timedelta(minutes=16)
    # The cache expires by wall-clock time, so move the clock it reads.
    with mock.patch("django.core.cache.backends.locmem.time.time", return_value=later.timestamp()):
        assert sign_in(client, technician.email).status_code == 302


def test_an_empty_form_is_not_a_failure(client, technician):
    for _ in range(6):
        assert client.post(SIGN_IN, {"username": technician.email}).status_code == 200
    assert sign_in(client, technician.email).status_code == 302


def test_limit_and_window_come_from_settings(client, technician, settings):
    settings.SIGN_IN_MAX_FAILURES = 2
    settings.SIGN_IN_FAILURE_WINDOW_MINUTES = 30
    fail(client, technician.email, 2)
    response = sign_in(client, technician.email)
    assert response.status_code == 429
    assert "Wait 30 minutes and try again." in response.content.decode()
