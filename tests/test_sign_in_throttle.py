"""One sign-in throttle for every door staff use: the console's /sign-in/ and the support
admin's /support/login/ share the count. Past the limit, the wait doubles with each further
failure, and the right password works again once the wait is over; an IP's limit is far above an
email's, so a mistyping colleague does not lock out their office."""

from unittest import mock

import pytest
from django.urls import reverse

from tests.factories import PASSWORD

SIGN_IN = reverse("login")
SUPPORT_LOGIN = reverse("admin:login")
WAIT_A_MINUTE = "Too many failed sign-in attempts. Wait 1 minute and try again."


class Clock:
    """Moves the time that the throttle and the local-memory cache read."""

    def __init__(self, start):
        self.now = start

    def advance(self, seconds):
        self.now += seconds


@pytest.fixture
def clock():
    import time

    clock = Clock(time.time())
    with (
        mock.patch("helpers.attempt_counter.time.time", side_effect=lambda: clock.now),
        mock.patch("django.core.cache.backends.locmem.time.time", side_effect=lambda: clock.now),
    ):
        yield clock


def sign_in(client, email, password=PASSWORD, ip="10.0.0.1", door=SIGN_IN):
    return client.post(door, {"username": email, "password": password}, REMOTE_ADDR=ip)


def fail(client, email, times, ip="10.0.0.1", door=SIGN_IN):
    for _ in range(times):
        response = sign_in(client, email, "wrong-password", ip=ip, door=door)
        assert response.status_code == 200
        assert "correct email and password" in response.content.decode()


def test_after_five_failures_the_right_password_waits_a_minute(client, technician, clock):
    fail(client, technician.email, 5)

    response = sign_in(client, technician.email)

    assert response.status_code == 429
    assert WAIT_A_MINUTE in response.content.decode()
    assert "_auth_user_id" not in client.session
    clock.advance(61)
    assert sign_in(client, technician.email).status_code == 302


def test_each_further_failure_doubles_the_wait(client, technician, clock):
    fail(client, technician.email, 5)
    clock.advance(61)
    fail(client, technician.email, 1)  # the sixth: two minutes now

    clock.advance(61)
    response = sign_in(client, technician.email)
    assert response.status_code == 429
    assert "Wait 1 minute" in response.content.decode()
    clock.advance(60)
    assert sign_in(client, technician.email).status_code == 302


def test_the_wait_is_capped(client, technician, clock, settings):
    settings.SIGN_IN_LOCKOUT_MAX_SECONDS = 120
    fail(client, technician.email, 5)
    for _ in range(5):
        clock.advance(121)
        fail(client, technician.email, 1)
    clock.advance(121)
    assert sign_in(client, technician.email).status_code == 302


def test_the_support_admin_login_counts_and_is_refused_like_the_console(client, mssp_admin, clock):
    fail(client, mssp_admin.email, 3, door=SUPPORT_LOGIN)
    fail(client, mssp_admin.email, 2, door=SIGN_IN)

    for door in (SUPPORT_LOGIN, SIGN_IN):
        response = sign_in(client, mssp_admin.email, door=door)
        assert response.status_code == 429
        assert WAIT_A_MINUTE in response.content.decode()
        assert "_auth_user_id" not in client.session


def test_a_waiting_attempt_checks_no_password(client, technician):
    fail(client, technician.email, 5)
    with mock.patch("accounts.models.User.check_password") as check_password:
        assert sign_in(client, technician.email).status_code == 429
    check_password.assert_not_called()


def test_the_email_counter_spans_ip_addresses_and_letter_case(client, technician):
    for n in range(5):
        fail(client, technician.email.upper(), 1, ip=f"10.0.0.{n}")
    assert sign_in(client, f" {technician.email} ", ip="10.0.0.99").status_code == 429


def test_one_mistyping_colleague_does_not_lock_out_the_office(client, technician, mssp_admin):
    fail(client, "colleague@mssp.example", 5, ip="10.6.6.6")
    assert sign_in(client, technician.email, ip="10.6.6.6").status_code == 302


def test_an_ip_guessing_many_emails_is_made_to_wait(client, technician, settings):
    settings.SIGN_IN_MAX_FAILURES_PER_IP = 20
    for n in range(20):
        fail(client, f"guess{n}@mssp.example", 1, ip="10.6.6.6")

    assert sign_in(client, technician.email, ip="10.6.6.6").status_code == 429
    assert sign_in(client, technician.email, ip="10.7.7.7").status_code == 302


def test_the_per_ip_limit_is_far_above_the_per_email_limit(settings):
    assert settings.SIGN_IN_MAX_FAILURES_PER_IP >= 10 * settings.SIGN_IN_MAX_FAILURES


def test_four_failures_still_let_the_right_password_in(client, technician):
    fail(client, technician.email, 4)
    assert sign_in(client, technician.email).status_code == 302


def test_a_successful_sign_in_clears_the_emails_counter(client, technician):
    fail(client, technician.email, 4)
    assert sign_in(client, technician.email).status_code == 302
    client.post(reverse("logout"))

    fail(client, technician.email, 4, ip="10.0.0.2")
    assert sign_in(client, technician.email, ip="10.0.0.2").status_code == 302


def test_the_count_is_forgotten_a_window_after_the_last_wait(client, technician, clock):
    fail(client, technician.email, 5)
    clock.advance(60 + 15 * 60 + 1)
    fail(client, technician.email, 4)
    assert sign_in(client, technician.email).status_code == 302


def test_an_empty_form_is_not_a_failure(client, technician):
    for _ in range(6):
        assert client.post(SIGN_IN, {"username": technician.email}).status_code == 200
    assert sign_in(client, technician.email).status_code == 302


def test_limit_and_wait_come_from_settings(client, technician, settings):
    settings.SIGN_IN_MAX_FAILURES = 2
    settings.SIGN_IN_LOCKOUT_SECONDS = 30 * 60
    fail(client, technician.email, 2)
    response = sign_in(client, technician.email)
    assert response.status_code == 429
    assert "Wait 30 minutes and try again." in response.content.decode()


def test_guesses_sent_in_parallel_are_counted_before_any_is_checked(technician, clock):
    """30 requests at once all reach the throttle before the first wrong password is counted:
    only the limit's worth are checked, the rest are refused unchecked."""
    from accounts import sign_in_guard

    identity = sign_in_guard.console_identity(technician.email)
    let_through, refused = 0, 0
    for n in range(30):
        try:
            sign_in_guard.check(identity, f"10.0.1.{n}")
        except sign_in_guard.LockedOut:
            refused += 1
        else:
            let_through += 1
    assert (let_through, refused) == (5, 25)


def test_the_right_password_gives_the_ip_its_attempt_back(client, technician, settings):
    settings.SIGN_IN_MAX_FAILURES_PER_IP = 3
    for _ in range(5):
        assert sign_in(client, technician.email, ip="10.8.8.8").status_code == 302
        client.logout()
    assert sign_in(client, technician.email, ip="10.8.8.8").status_code == 302


def test_a_second_request_beside_a_right_one_after_a_lock_locks_nobody(technician, settings):
    """After an IP's lock is over, two people behind it sign in at the same moment: one is
    checked, the other asked to try again, and nobody's lock comes back (found in review)."""
    from accounts import sign_in_guard

    settings.SIGN_IN_MAX_FAILURES_PER_IP = 3
    ip = "10.0.3.1"
    for n in range(3):
        identity = sign_in_guard.console_identity(f"guess{n}@mssp.example")
        sign_in_guard.check(identity, ip)
        sign_in_guard.failed(identity, ip)
    from helpers import attempt_counter

    attempt_counter.cache.delete(f"sign-in:ip:{ip}:until")  # the lock is over
    first = sign_in_guard.console_identity(technician.email)
    second = sign_in_guard.console_identity("colleague@mssp.example")

    sign_in_guard.check(first, ip)
    with pytest.raises(sign_in_guard.LockedOut):
        sign_in_guard.check(second, ip)
    sign_in_guard.succeeded(first, ip)

    sign_in_guard.check(second, ip)  # no lock came back: the colleague goes on
