"""Sessions people can see and end: a row for every signed-in browser (console and portal),
kept current at most once a minute and gone at sign-out; the person's sessions page, where they
end any other session or all of them; admins ending a portal user's sessions from the users
page and the contact's card; disable, delete and a CRM email change ending them; the portal's
idle timeout."""

from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import lifecycle, portal_sessions, signed_in_sessions
from accounts.console_sessions import ENDED_MESSAGE
from accounts.models import AuditEvent, SignedInSession
from tests.factories import PASSWORD, PortalUserFactory

SIGN_IN = reverse("login")
SESSIONS = reverse("my-sessions")
END_OTHERS = reverse("my-sessions-end-others")
PORTAL_LOGIN = reverse("portal-login", args=["acme"])
PORTAL_HOME = reverse("portal-home", args=["acme"])
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


@pytest.fixture(autouse=True)
def _password_is_enough(settings):
    # About sessions, not the second factor (tests/test_two_factor*.py).
    settings.TWO_FACTOR_REQUIRED_FOR_MSSP_STAFF = False


def at(moment):
    return mock.patch("django.utils.timezone.now", return_value=moment)


def console_browser(user, agent=CHROME_WINDOWS, ip="203.0.113.7"):
    client = Client(headers={"User-Agent": agent}, REMOTE_ADDR=ip)
    response = client.post(SIGN_IN, {"username": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.content.decode()
    return client


def portal_browser(user, agent=SAFARI_IPHONE, ip="198.51.100.4"):
    client = Client(headers={"User-Agent": agent}, REMOTE_ADDR=ip)
    response = client.post(PORTAL_LOGIN, {"email": user.email, "password": PASSWORD})
    assert response.status_code == 302
    return client


def signed_in(client, page=SESSIONS):
    return client.get(page).status_code == 200


def portal_signed_in(client):
    return client.get(PORTAL_HOME).status_code == 200


def row_of(client):
    return SignedInSession.objects.get(session_key=client.session.session_key)


@pytest.fixture
def pia(account, partner_role):
    return PortalUserFactory(
        portal_account=account, role=partner_role, name="Pia Portal", email="pia@acme.example"
    )


# --- Rows ---


def test_a_console_sign_in_records_the_session(technician):
    client = console_browser(technician)

    row = row_of(client)
    assert row.user == technician
    assert row.door == SignedInSession.Door.CONSOLE
    assert row.ip_address == "203.0.113.7"
    assert row.user_agent == CHROME_WINDOWS
    assert Session.objects.filter(session_key=row.session_key).exists()


def test_a_portal_sign_in_records_the_session(pia):
    client = portal_browser(pia)

    row = row_of(client)
    assert row.user == pia
    assert row.door == SignedInSession.Door.PORTAL
    assert row.ip_address == "198.51.100.4"


def test_signing_in_again_in_the_same_browser_keeps_one_row_per_session(pia):
    client = portal_browser(pia)
    client.post(PORTAL_LOGIN, {"email": pia.email, "password": PASSWORD})
    assert SignedInSession.objects.filter(user=pia).count() == 1
    assert row_of(client).user == pia


def test_signing_out_deletes_the_row(technician, pia):
    console = console_browser(technician)
    console.post(reverse("logout"))
    portal = portal_browser(pia)
    portal.post(reverse("portal-logout", args=["acme"]))
    assert not SignedInSession.objects.exists()


def test_last_seen_moves_at_most_once_a_minute(technician):
    start = timezone.now()
    with at(start):
        client = console_browser(technician)
    row = row_of(client)
    with at(start + timedelta(seconds=30)):
        assert signed_in(client)
    assert row_of(client).last_seen_at == row.last_seen_at
    with at(start + timedelta(minutes=2)):
        assert signed_in(client)
    assert row_of(client).last_seen_at == start + timedelta(minutes=2)


def test_the_portal_keeps_its_rows_current_too(pia):
    start = timezone.now()
    with at(start):
        client = portal_browser(pia)
    with at(start + timedelta(minutes=5)):
        assert portal_signed_in(client)
    assert row_of(client).last_seen_at == start + timedelta(minutes=5)


def test_a_session_whose_row_is_gone_is_signed_out(technician):
    start = timezone.now()
    with at(start):
        client = console_browser(technician)
    SignedInSession.objects.all().delete()  # ended elsewhere, the session store not reached
    with at(start + timedelta(minutes=2)):
        response = client.get(SESSIONS)
    assert response.status_code == 302
    assert ENDED_MESSAGE in client.get(SIGN_IN).content.decode()
    assert not signed_in(client)


def test_a_session_from_before_rows_were_kept_gets_one(technician_client, technician):
    SignedInSession.objects.all().delete()
    session = technician_client.session
    del session[signed_in_sessions.ROW_KEY]
    session.save()
    with at(timezone.now() + timedelta(minutes=2)):
        assert signed_in(technician_client)
    assert row_of(technician_client).user == technician


# --- Your sign-ins and sessions ---


def test_the_sessions_page_lists_where_you_are_signed_in(technician):
    here = console_browser(technician)
    console_browser(technician, agent=FIREFOX_LINUX, ip="192.0.2.55")

    page = here.get(SESSIONS)
    html = page.content.decode()

    assert page.status_code == 200
    assert "Your sign-ins and sessions" in html
    assert "Chrome on Windows" in html
    assert "Firefox on Linux" in html
    assert "192.0.2.55" in html
    assert html.count("This browser") == 1
    assert html.index("Chrome on Windows") < html.index("Firefox on Linux")  # this one first
    assert "Sign out all other sessions (1)" in html
    assert f'href="{SESSIONS}"' in here.get(reverse("home"), follow=True).content.decode()


def test_you_end_another_session_after_confirming(technician):
    here = console_browser(technician)
    there = console_browser(technician, agent=FIREFOX_LINUX, ip="192.0.2.55")
    url = reverse("my-session-end", args=[row_of(there).pk])

    confirm = here.get(url)
    assert confirm.status_code == 200
    assert "End the session on Firefox on Linux?" in confirm.content.decode()
    dialog = here.get(url, headers={"HX-Request": "true"})
    assert "<dialog" in dialog.content.decode()
    assert dialog["HX-Retarget"] == "#dialog-slot"
    assert signed_in(there)  # asking changed nothing

    response = here.post(url)

    assert response.status_code == 302
    assert response.url == SESSIONS
    assert "Signed out Firefox on Linux (192.0.2.55)." in here.get(SESSIONS).content.decode()
    assert not signed_in(there)
    event = AuditEvent.objects.get(action=signed_in_sessions.END_SESSIONS)
    assert event.actor == technician
    assert event.subject_user == technician
    assert event.after["sessions_ended"] == 1
    assert event.after["device"] == "Firefox on Linux"


def test_you_end_all_your_other_sessions(technician):
    here = console_browser(technician)
    others = [console_browser(technician, agent=FIREFOX_LINUX) for _ in range(2)]

    assert "2 open sessions" in here.get(END_OTHERS).content.decode()
    here.post(END_OTHERS)

    assert signed_in(here)
    assert not any(signed_in(other) for other in others)
    assert SignedInSession.objects.filter(user=technician).count() == 1
    event = AuditEvent.objects.get(action=signed_in_sessions.END_SESSIONS)
    assert event.after == {"sessions_ended": 2}


def test_this_browser_is_ended_by_signing_out(technician):
    here = console_browser(technician)
    response = here.post(reverse("my-session-end", args=[row_of(here).pk]))
    assert response.status_code == 400
    assert "sign out instead" in response.content.decode()
    assert signed_in(here)


def test_someone_elses_session_is_a_404(technician, mssp_admin):
    here = console_browser(technician)
    theirs = console_browser(mssp_admin)
    url = reverse("my-session-end", args=[row_of(theirs).pk])

    assert here.get(url).status_code == 404
    assert here.post(url).status_code == 404
    assert signed_in(theirs)


def test_an_account_admin_sees_their_own_sessions(account_admin):
    client = console_browser(account_admin)
    html = client.get(SESSIONS).content.decode()
    assert "This browser" in html


def test_an_account_admins_page_reads_them_their_contact_and_account_in_one_query(
    account_admin_client, django_assert_num_queries
):
    account_admin_client.get(SESSIONS)
    # The session; the admin with their contact and portal account; their second-factor device;
    # their sessions; their sign-ins.
    with django_assert_num_queries(5):
        assert account_admin_client.get(SESSIONS).status_code == 200


def test_a_portal_session_cannot_open_the_sessions_page(pia):
    client = portal_browser(pia)
    response = client.get(SESSIONS)
    assert response.status_code == 302
    assert response.url.startswith(SIGN_IN)


# --- Admins end a portal user's sessions ---


def end_sessions_url(user, slug="acme"):
    return reverse("user-action", args=[slug, user.pk, "end-sessions"])


def test_an_account_admin_ends_a_portal_users_sessions(account_admin_client, pia, account_admin):
    phone, laptop = portal_browser(pia), portal_browser(pia, agent=FIREFOX_LINUX)

    users_page = account_admin_client.get(reverse("users", args=["acme"])).content.decode()
    assert end_sessions_url(pia) in users_page
    confirm = account_admin_client.get(end_sessions_url(pia)).content.decode()
    assert "End Pia Portal&#x27;s sessions?" in confirm
    assert "Pia Portal has 2 open sessions." in confirm

    response = account_admin_client.post(end_sessions_url(pia))

    assert response.status_code == 302
    assert not portal_signed_in(phone)
    assert not portal_signed_in(laptop)
    assert not SignedInSession.objects.filter(user=pia).exists()
    event = AuditEvent.objects.get(action=signed_in_sessions.END_SESSIONS)
    assert event.actor == account_admin
    assert event.subject_user == pia
    assert event.portal_account == pia.portal_account
    assert event.after == {"sessions_ended": 2}
    # Pia signs in again as usual.
    assert portal_signed_in(portal_browser(pia))


def test_ending_sessions_says_when_there_are_none(account_admin_client, pia):
    confirm = account_admin_client.get(end_sessions_url(pia)).content.decode()
    assert "Pia Portal has no open sessions right now" in confirm
    assert account_admin_client.post(end_sessions_url(pia)).status_code == 302


def test_another_accounts_user_is_a_404(account_admin_client, other_account):
    gina = PortalUserFactory(portal_account=other_account, email="gina@globex.example")
    browser = portal_browser_for(gina, other_account)
    assert account_admin_client.get(end_sessions_url(gina)).status_code == 404
    assert account_admin_client.post(end_sessions_url(gina)).status_code == 404
    assert account_admin_client.post(end_sessions_url(gina, "globex")).status_code == 404
    assert SignedInSession.objects.filter(user=gina).exists()
    assert browser.get(reverse("portal-home", args=["globex"])).status_code == 200


def portal_browser_for(user, account):
    client = Client()
    client.post(
        reverse("portal-login", args=[account.slug]), {"email": user.email, "password": PASSWORD}
    )
    return client


def test_an_account_admin_cannot_end_their_own_seats_sessions(account_admin_client, account_admin):
    at_the_portal = portal_browser(account_admin)
    assert account_admin_client.post(end_sessions_url(account_admin)).status_code == 403
    assert portal_signed_in(at_the_portal)


def test_mssp_staff_end_an_account_admins_sessions(technician_client, account_admin):
    elsewhere = console_browser(account_admin)
    assert technician_client.post(end_sessions_url(account_admin)).status_code == 302
    assert not signed_in(elsewhere)


def test_the_contact_card_ends_a_portal_users_sessions(technician_client, pia):
    phone = portal_browser(pia)
    contact_page = reverse("contact", args=["acme", pia.contact_id])
    url = reverse("contact-portal-user", args=["acme", pia.contact_id, "end-sessions"])

    card = technician_client.get(contact_page).content.decode()
    assert url in card
    assert "Pia Portal has 1 open session." in card
    assert technician_client.post(url).status_code == 400  # asks for the confirmation first
    assert portal_signed_in(phone)

    response = technician_client.post(url, {"confirmed": "1"})

    assert response.status_code == 302
    assert not portal_signed_in(phone)
    assert AuditEvent.objects.filter(
        action=signed_in_sessions.END_SESSIONS, subject_user=pia
    ).exists()


def test_ending_is_offered_only_while_a_session_is_open(technician_client, pia):
    """Neither the card nor the user's page offers to end sessions that are not there (a row of
    a session that idled out does not count)."""
    on_card = reverse("contact-portal-user", args=["acme", pia.contact_id, "end-sessions"])
    on_page = reverse("user-action", args=["acme", pia.pk, "end-sessions"])
    pages = (
        reverse("contact", args=["acme", pia.contact_id]),
        reverse("user", args=["acme", pia.pk]),
    )

    def offered():
        return [on_card in technician_client.get(pages[0]).content.decode()] + [
            on_page in technician_client.get(pages[1]).content.decode()
        ]

    assert offered() == [False, False]
    portal_browser(pia)
    assert offered() == [True, True]
    # The session idled out: its row stays until Pia signs in again.
    SignedInSession.objects.filter(user=pia).update(
        last_seen_at=timezone.now() - timedelta(days=30)
    )
    assert offered() == [False, False]


def test_ending_sessions_that_ended_meanwhile_is_no_error(technician_client, pia):
    """The card offered End sessions; the last session ended before the click: nothing to do,
    and no refusal that blames the user's state."""
    portal_browser(pia)
    SignedInSession.objects.filter(user=pia).delete()
    url = reverse("contact-portal-user", args=["acme", pia.contact_id, "end-sessions"])
    assert technician_client.get(url).status_code == 200  # the confirmation
    assert technician_client.post(url, {"confirmed": "1"}).status_code == 302


def test_the_card_offers_no_ending_for_a_disabled_user(technician_client, pia, mssp_admin):
    lifecycle.disable(pia, by=mssp_admin)
    url = reverse("contact-portal-user", args=["acme", pia.contact_id, "end-sessions"])
    assert technician_client.post(url, {"confirmed": "1"}).status_code == 409


# --- Changes to the user end their sessions ---


def test_disabling_a_user_ends_their_sessions(pia, mssp_admin):
    phone = portal_browser(pia)
    lifecycle.disable(pia, by=mssp_admin)
    assert not SignedInSession.objects.filter(user=pia).exists()
    assert not Session.objects.filter(session_key=phone.session.session_key).exists()
    assert not portal_signed_in(phone)


def test_deleting_a_user_ends_their_sessions(pia, mssp_admin):
    phone = portal_browser(pia)
    key = phone.session.session_key
    lifecycle.delete(pia, by=mssp_admin)
    assert not Session.objects.filter(session_key=key).exists()
    assert not SignedInSession.objects.exists()


def test_disabling_an_account_admin_ends_their_console_sessions_too(account_admin, mssp_admin):
    console = console_browser(account_admin)
    lifecycle.disable(account_admin, by=mssp_admin)
    assert not signed_in(console)


def test_a_crm_email_change_that_applies_ends_the_users_portal_sessions(api_client, pia):
    """A change that applies at once (Pia's activation date cleared: the CRM's change of a user
    with a password waits for the new address instead) ends the sessions begun with the old."""
    from accounts.models import User

    User.objects.filter(pk=pia.pk).update(activated_at=None)
    phone = portal_browser(pia)
    response = api_client.post(
        reverse("api-sync-upsert", args=["acme"]),
        {
            "contacts": [
                {"contact_id": pia.contact.contact_id, "name": pia.name, "email": "pia@new.example"}
            ]
        },
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert not portal_signed_in(phone)
    event = AuditEvent.objects.get(action="user_follows_contact")
    assert event.after["email_change"]["portal_sessions_ended"] == 1


# --- The portal's idle timeout ---


def test_a_portal_session_ends_after_30_idle_minutes(pia):
    start = timezone.now()
    with at(start):
        phone = portal_browser(pia)
    with at(start + timedelta(minutes=29)):
        assert portal_signed_in(phone)
    with at(start + timedelta(minutes=29 + 31)):
        response = phone.get(PORTAL_HOME)
    assert response.status_code == 302
    assert response.url == PORTAL_LOGIN
    assert portal_sessions.EXPIRED_MESSAGE in phone.get(PORTAL_LOGIN).content.decode()
    assert not portal_signed_in(phone)
    assert not SignedInSession.objects.filter(user=pia).exists()
    event = AuditEvent.objects.get(action="sign_out")
    assert event.detail == "session expired"


def test_the_portal_idle_timeout_is_a_setting(pia, settings):
    settings.PORTAL_IDLE_TIMEOUT_MINUTES = 5
    start = timezone.now()
    with at(start):
        phone = portal_browser(pia)
    with at(start + timedelta(minutes=6)):
        assert not portal_signed_in(phone)


def test_console_sessions_keep_their_own_clock(technician, settings):
    settings.PORTAL_IDLE_TIMEOUT_MINUTES = 5
    start = timezone.now()
    with at(start):
        client = console_browser(technician)
    with at(start + timedelta(minutes=20)):
        assert signed_in(client)


# --- Devices in plain words ---


@pytest.mark.parametrize(
    ("agent", "device"),
    [
        (CHROME_WINDOWS, "Chrome on Windows"),
        (SAFARI_IPHONE, "Safari on iPhone"),
        (FIREFOX_LINUX, "Firefox on Linux"),
        (CHROME_WINDOWS + " Edg/131.0.0.0", "Edge on Windows"),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/17.5 Safari/605.1.15",
            "Safari on Mac",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Mobile Safari/537.36",
            "Chrome on Android",
        ),
        ("curl/8.5.0", "curl"),
        ("something odd", "Unknown browser"),
        ("", "Unknown device"),
    ],
)
def test_devices_are_named_in_plain_words(agent, device):
    assert signed_in_sessions.describe_device(agent) == device
