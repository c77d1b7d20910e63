"""Brute force at the portal: wrong passwords and wrong codes go through the sign-in throttle
the console uses (per portal account + email, and a far higher limit per IP; a wait that doubles);
requests for emails are limited per (portal account + email) and per IP address. A refused
request is a plain 429 that checks and sends nothing."""

import re
from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.utils import timezone

from tests.factories import PASSWORD, PortalUserFactory

REFUSED = "Too many attempts. Wait 15 minutes and try again."
LOCKED_OUT = "Too many failed sign-in attempts. Wait 1 minute and try again."
LOGIN = "/p/acme/login/"
REQUEST_LINK = "/p/acme/login/email-link/"
REQUEST_CODE = "/p/acme/login/email-code/"
ENTER_CODE = "/p/acme/login/code/"
FORGOT = "/p/acme/forgot-password/"


@pytest.fixture
def alan(account, partner_role):
    return PortalUserFactory(
        portal_account=account, role=partner_role, name="Alan Turing", email="alan@example.com"
    )


def sign_in(client, email="alan@example.com", password=PASSWORD, ip="10.0.0.1", slug="acme"):
    return client.post(f"/p/{slug}/login/", {"email": email, "password": password}, REMOTE_ADDR=ip)


def fail(client, times, email="alan@example.com", ip="10.0.0.1", slug="acme"):
    for _ in range(times):
        response = sign_in(client, email, "wrong-password", ip=ip, slug=slug)
        assert response.status_code == 200


@pytest.fixture
def ask(client, django_capture_on_commit_callbacks):
    def post(url, email="alan@example.com", ip="10.0.0.1"):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url, {"email": email}, REMOTE_ADDR=ip)

    return post


# --- Passwords ---


def test_after_five_wrong_passwords_the_right_one_waits_a_minute(client, alan):
    fail(client, 5)
    with mock.patch("accounts.models.User.check_password") as check_password:
        response = sign_in(client)
    assert response.status_code == 429
    assert LOCKED_OUT in response.content.decode()
    check_password.assert_not_called()
    assert "_auth_user_id" not in client.session

    later = timezone.now() + timedelta(seconds=61)
    with mock.patch("helpers.attempt_counter.time.time", return_value=later.timestamp()):
        assert sign_in(client).status_code == 302


def test_four_wrong_passwords_still_let_the_right_one_in(client, alan):
    fail(client, 4)
    assert sign_in(client).status_code == 302


def test_the_email_counter_spans_ip_addresses_and_letter_case(client, alan):
    for n in range(5):
        fail(client, 1, email="ALAN@example.com", ip=f"10.0.0.{n}")
    assert sign_in(client, " alan@example.com ", ip="10.0.0.99").status_code == 429


def test_one_email_has_one_count_across_portal_accounts(client, alan, other_account):
    """The same address at two portal accounts is one mailbox, so one person: five guesses in
    all, not five at each account's door."""
    PortalUserFactory(portal_account=other_account, email="alan@example.com")
    fail(client, 3, slug="acme")
    fail(client, 2, slug=other_account.slug, ip="10.9.9.8")
    assert sign_in(client, ip="10.9.9.9", slug=other_account.slug).status_code == 429
    assert sign_in(client, ip="10.9.9.9", slug="acme").status_code == 429


def test_an_account_admin_has_one_count_for_the_console_and_the_portal(client, account_admin):
    """One password, one count: three wrong at the console and two at the portal lock both."""
    for _ in range(3):
        client.post(
            "/sign-in/",
            {"username": account_admin.email, "password": "wrong"},
            REMOTE_ADDR="10.1.1.1",
        )
    fail(client, 2, email=account_admin.email, ip="10.1.1.2")

    assert sign_in(client, email=account_admin.email, ip="10.1.1.3").status_code == 429
    response = client.post(
        "/sign-in/", {"username": account_admin.email, "password": PASSWORD}, REMOTE_ADDR="10.1.1.3"
    )
    assert response.status_code == 429


def test_an_unknown_email_locks_the_same_way_so_a_lock_tells_nothing(client, alan):
    fail(client, 5, email="nobody@example.com")
    response = client.post(
        "/sign-in/", {"username": "nobody@example.com", "password": "x"}, REMOTE_ADDR="10.1.1.9"
    )
    assert response.status_code == 429


def test_a_portal_users_right_password_does_not_wipe_guesses_at_a_staff_password(
    client, account, partner_role, technician
):
    """An attacker who owns a portal login with an MSSP technician's email must not reset, by
    signing in there, the count of their guesses at the technician's console password."""
    PortalUserFactory(portal_account=account, role=partner_role, email=technician.email)
    for _ in range(4):
        client.post(
            "/sign-in/", {"username": technician.email, "password": "wrong"}, REMOTE_ADDR="10.2.2.1"
        )
    assert sign_in(client, email=technician.email, ip="10.2.2.2").status_code == 302
    client.post("/p/acme/logout/")
    client.post(
        "/sign-in/", {"username": technician.email, "password": "wrong"}, REMOTE_ADDR="10.2.2.3"
    )

    response = client.post(
        "/sign-in/", {"username": technician.email, "password": PASSWORD}, REMOTE_ADDR="10.2.2.4"
    )
    assert response.status_code == 429


def test_a_portal_users_right_password_clears_the_count_when_nobody_else_has_the_email(
    client, alan
):
    fail(client, 4)
    assert sign_in(client).status_code == 302
    client.post("/p/acme/logout/")
    # Alan has no console login: each try there is a failure, and four more lock nothing once
    # the right password cleared the four before (uncleared, the second would be refused).
    for _ in range(4):
        response = client.post(
            "/sign-in/", {"username": "alan@example.com", "password": "x"}, REMOTE_ADDR="10.3.3.3"
        )
        assert response.status_code == 200


def test_one_mistyping_colleague_does_not_lock_out_the_office(client, alan):
    fail(client, 5, email="colleague@example.com", ip="10.6.6.6")
    assert sign_in(client, ip="10.6.6.6").status_code == 302


def test_an_ip_guessing_many_addresses_is_made_to_wait(client, alan, settings):
    settings.SIGN_IN_MAX_FAILURES_PER_IP = 20
    for n in range(20):
        fail(client, 1, email=f"guess{n}@example.com", ip="10.6.6.6")
    assert sign_in(client, ip="10.6.6.6").status_code == 429
    assert sign_in(client, ip="10.7.7.7").status_code == 302


def test_portal_and_console_failures_from_one_ip_share_its_count(client, alan, settings):
    settings.SIGN_IN_MAX_FAILURES_PER_IP = 4
    for n in range(2):
        fail(client, 1, email=f"guess{n}@example.com", ip="10.6.6.6")
    for n in range(2):
        client.post(
            "/sign-in/",
            {"username": f"staff{n}@mssp.example", "password": "wrong"},
            REMOTE_ADDR="10.6.6.6",
        )
    assert sign_in(client, ip="10.6.6.6").status_code == 429


def test_a_successful_sign_in_clears_the_emails_counter(client, alan):
    fail(client, 4)
    assert sign_in(client).status_code == 302
    client.post("/p/acme/logout/")
    fail(client, 4, ip="10.0.0.2")
    assert sign_in(client, ip="10.0.0.2").status_code == 302


def test_an_empty_password_is_not_a_failure(client, alan):
    for _ in range(6):
        assert client.post(LOGIN, {"email": "alan@example.com"}).status_code == 200
    assert sign_in(client).status_code == 302


def test_a_nul_in_the_email_is_a_wrong_password_not_an_error(client, alan):
    response = sign_in(client, "alan\x00@example.com")
    assert response.status_code == 200
    assert "do not match" in response.content.decode()


# --- Codes ---


def test_wrong_codes_count_as_failures(client, alan, ask):
    ask(REQUEST_CODE)
    code = re.search(r"^\s+(\d{6})$", mail.outbox[-1].body, re.MULTILINE).group(1)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    fail(client, 3)
    for _ in range(2):
        client.post(
            ENTER_CODE, {"email": "alan@example.com", "code": wrong}, REMOTE_ADDR="10.0.0.1"
        )

    with mock.patch("accounts.tokens.redeem_code") as redeem_code:
        response = client.post(
            ENTER_CODE, {"email": "alan@example.com", "code": code}, REMOTE_ADDR="10.0.0.1"
        )
    assert response.status_code == 429
    assert LOCKED_OUT in response.content.decode()
    redeem_code.assert_not_called()
    assert sign_in(client).status_code == 429


def test_guessing_codes_for_many_addresses_from_one_ip_is_refused(client, account, settings):
    settings.SIGN_IN_MAX_FAILURES_PER_IP = 5
    for n in range(5):
        client.post(
            ENTER_CODE, {"email": f"guess{n}@example.com", "code": "123456"}, REMOTE_ADDR="10.6.6.6"
        )
    response = client.post(
        ENTER_CODE, {"email": "other@example.com", "code": "123456"}, REMOTE_ADDR="10.6.6.6"
    )
    assert response.status_code == 429


# --- Requests for emails ---


@pytest.mark.parametrize("url", [REQUEST_LINK, REQUEST_CODE, FORGOT])
def test_the_sixth_request_for_one_address_is_refused_and_sends_nothing(alan, ask, url):
    for n in range(5):
        assert ask(url, ip=f"10.0.0.{n}").status_code == 200
    assert len(mail.outbox) == 5

    response = ask(url, ip="10.0.0.99")

    assert response.status_code == 429
    assert REFUSED in response.content.decode()
    assert len(mail.outbox) == 5


def test_requests_of_every_kind_share_the_count(alan, ask):
    for url in [REQUEST_LINK, REQUEST_CODE, FORGOT, REQUEST_LINK, REQUEST_CODE]:
        ask(url)
    assert ask(FORGOT).status_code == 429


def test_an_unknown_address_is_counted_and_refused_like_a_known_one(alan, ask):
    for _ in range(5):
        ask(REQUEST_LINK, "nobody@example.com")
        ask(REQUEST_LINK, ip="10.0.0.2")
    known, unknown = ask(REQUEST_LINK, ip="10.0.0.2"), ask(REQUEST_LINK, "nobody@example.com")
    assert known.status_code == unknown.status_code == 429


def test_an_ip_asking_for_many_addresses_is_refused(alan, ask, settings):
    settings.PORTAL_LINK_REQUESTS_MAX_PER_IP = 5
    for n in range(5):
        ask(REQUEST_LINK, f"someone{n}@example.com", ip="10.6.6.6")
    assert ask(REQUEST_LINK, ip="10.6.6.6").status_code == 429
    assert mail.outbox == []
    assert ask(REQUEST_LINK, ip="10.7.7.7").status_code == 200
    assert len(mail.outbox) == 1


def test_an_office_behind_one_address_may_ask_for_many_links(account, ask):
    for n in range(10):
        PortalUserFactory(portal_account=account, email=f"colleague{n}@example.com")
        assert ask(REQUEST_LINK, f"colleague{n}@example.com", ip="10.6.6.6").status_code == 200
    assert len(mail.outbox) == 10


def test_the_request_limit_comes_from_settings(alan, ask, settings):
    settings.PORTAL_LINK_REQUESTS_MAX = 1
    assert ask(REQUEST_LINK).status_code == 200
    assert ask(REQUEST_LINK).status_code == 429


@pytest.mark.parametrize("email", ["ünïcode+tag@exämple.com", "x" * 240 + "@example.com"])
def test_odd_addresses_are_throttled_without_errors(client, account, email, settings):
    settings.SIGN_IN_MAX_FAILURES = 1
    fail(client, 1, email=email)
    assert sign_in(client, email).status_code == 429


def test_a_request_without_a_client_address_is_still_counted_by_email(client, alan, settings):
    settings.SIGN_IN_MAX_FAILURES = 1
    fail(client, 1, ip="")
    assert sign_in(client, ip="").status_code == 429
