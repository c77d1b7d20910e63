from datetime import timedelta
from unittest import mock

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from accounts.console_sessions import EXPIRED_MESSAGE, LAST_SEEN_AT, SIGNED_IN_AT
from tests.factories import PASSWORD, PortalUserFactory

SIGN_IN = reverse("login")
PAGE = reverse("audit-log", args=["acme"])


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


def at(moment):
    return mock.patch("django.utils.timezone.now", return_value=moment)


@pytest.fixture
def start():
    return timezone.now()


@pytest.fixture
def signed_in(technician_client, account, start):
    with at(start):
        assert technician_client.get(PAGE).status_code == 200
    return technician_client


def is_sent_to_sign_in(response, next_page=PAGE):
    return response.status_code == 302 and response.url == f"{SIGN_IN}?next={next_page}"


def test_a_session_ends_after_30_minutes_idle(signed_in, start):
    with at(start + timedelta(minutes=31)):
        response = signed_in.get(PAGE)
    assert is_sent_to_sign_in(response)
    sign_in_page = signed_in.get(response.url).content.decode()
    assert EXPIRED_MESSAGE in sign_in_page
    # Signed out for good, not just bounced once.
    assert signed_in.get(PAGE).status_code == 302


def test_activity_keeps_a_session_alive(signed_in, start):
    for minutes in (20, 40, 60, 80):
        with at(start + timedelta(minutes=minutes)):
            assert signed_in.get(PAGE).status_code == 200


def test_a_session_ends_after_12_hours_however_busy(signed_in, start):
    session = signed_in.session
    session[SIGNED_IN_AT] = (start - timedelta(hours=12)).timestamp()
    session.save()
    with at(start + timedelta(minutes=1)):
        assert is_sent_to_sign_in(signed_in.get(PAGE))


def test_the_limits_come_from_settings(signed_in, start, settings):
    settings.CONSOLE_IDLE_TIMEOUT_MINUTES = 5
    with at(start + timedelta(minutes=4)):
        assert signed_in.get(PAGE).status_code == 200
    with at(start + timedelta(minutes=10)):
        assert is_sent_to_sign_in(signed_in.get(PAGE))


def test_max_session_hours_comes_from_settings(signed_in, start, settings):
    settings.CONSOLE_MAX_SESSION_HOURS = 1
    for minutes in (25, 50):
        with at(start + timedelta(minutes=minutes)):
            assert signed_in.get(PAGE).status_code == 200
    with at(start + timedelta(minutes=75)):
        assert is_sent_to_sign_in(signed_in.get(PAGE))


def test_the_session_is_not_written_on_every_click(signed_in, start):
    with at(start + timedelta(seconds=20)):
        response = signed_in.get(PAGE)
    assert response.status_code == 200
    assert "sessionid" not in response.cookies
    with at(start + timedelta(minutes=2)):
        response = signed_in.get(PAGE)
    assert "sessionid" in response.cookies
    assert signed_in.session[LAST_SEEN_AT] == (start + timedelta(minutes=2)).timestamp()


def test_signing_in_through_the_form_starts_the_clock(client, technician, account, start, settings):
    settings.TWO_FACTOR_REQUIRED_FOR_MSSP_STAFF = False  # this is about the clock
    with at(start):
        assert client.post(SIGN_IN, {"username": technician.email, "password": PASSWORD}).url
    with at(start + timedelta(minutes=29)):
        assert client.get(PAGE).status_code == 200
    with at(start + timedelta(minutes=29 + 31)):
        assert is_sent_to_sign_in(client.get(PAGE))


def test_an_expired_htmx_request_redirects_the_whole_page(signed_in, start):
    with at(start + timedelta(minutes=31)):
        response = signed_in.get(
            PAGE + "?person=grace",
            headers={"HX-Request": "true", "HX-Current-URL": f"http://testserver{PAGE}?page=2"},
        )
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"{SIGN_IN}?next={PAGE}%3Fpage%3D2"
    assert response.content == b""


def test_an_htmx_request_without_a_session_redirects_the_whole_page(client, account):
    response = client.post(
        reverse("users", args=["acme"]),
        headers={"HX-Request": "true", "HX-Current-URL": f"http://testserver{PAGE}"},
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"{SIGN_IN}?next={PAGE}"
    assert b"Sign in" not in response.content


def test_a_plain_request_without_a_session_still_gets_a_normal_redirect(client, account):
    assert is_sent_to_sign_in(client.get(PAGE))


def test_portal_sessions_are_not_console_sessions(client, account, partner_role, start):
    user = PortalUserFactory(portal_account=account, role=partner_role)
    client.force_login(user, backend="accounts.backends.PortalBackend")
    portal_home = reverse("portal-home", args=["acme"])
    # Past the console's 30 idle minutes and 12 hours, within the portal's own idle limit
    # (tests/test_signed_in_sessions.py), which each click keeps at bay.
    for minutes in range(0, 13 * 60, 20):
        with at(start + timedelta(minutes=minutes)):
            response = client.get(portal_home)
            assert response.status_code == 200
    assert response.status_code == 200
    assert user.name in response.content.decode()
