"""Sign-in audit: every sign-in, refused sign-in, lockout and sign-out at every door is an audit
event with time, IP, user agent, door and method, visible to the right people (the account's
audit log and its Sign-ins filter, the global log, the person's own history) and counted on the
account's dashboard."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import lifecycle, sign_in_audit, tokens
from accounts.models import AuditEvent, TokenPurpose
from tests.factories import PASSWORD, PortalUserFactory

SIGN_IN = reverse("login")
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
PORTAL_LOGIN = reverse("portal-login", args=["acme"])
PORTAL_CODE = reverse("portal-code", args=["acme"])


@pytest.fixture(autouse=True)
def _password_is_enough(settings):
    # These tests are about the sign-in events; the second factor has its own tests.
    settings.TWO_FACTOR_REQUIRED_FOR_MSSP_STAFF = False


def browser():
    return Client(headers={"User-Agent": CHROME}, REMOTE_ADDR="203.0.113.7")


def events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def no_secret_in_events(*secrets):
    stored = str(list(AuditEvent.objects.values()))
    return not any(secret in stored for secret in secrets)


@pytest.fixture
def pia(account, partner_role):
    return PortalUserFactory(
        portal_account=account, role=partner_role, name="Pia Portal", email="pia@acme.example"
    )


# --- The console and the support admin ---


def test_a_console_sign_in_is_recorded_with_where_and_how(technician, account):
    response = browser().post(SIGN_IN, {"username": technician.email, "password": PASSWORD})
    assert response.status_code == 302

    (event,) = events(sign_in_audit.SIGN_IN)
    assert event.actor == technician
    assert event.subject_user == technician
    assert event.ip_address == "203.0.113.7"
    assert event.user_agent == CHROME
    assert event.after == {"door": "console", "method": "password"}
    assert event.outcome == AuditEvent.Outcome.SUCCESS
    assert no_secret_in_events(PASSWORD)


def test_a_wrong_console_password_is_recorded_against_the_person(technician):
    response = browser().post(SIGN_IN, {"username": technician.email.upper(), "password": "nope"})
    assert response.status_code == 200

    (event,) = events(sign_in_audit.SIGN_IN_FAILED)
    assert event.subject_user == technician
    assert event.actor is None
    assert event.actor_label == "anonymous"
    assert event.outcome == AuditEvent.Outcome.REFUSED
    assert event.after == {"door": "console", "method": "password"}
    assert event.detail == "wrong password"
    assert no_secret_in_events("nope")


def test_a_disabled_account_admin_at_the_console_is_told_apart(account_admin, technician):
    lifecycle.disable(account_admin, by=technician)
    browser().post(SIGN_IN, {"username": account_admin.email, "password": PASSWORD})

    (event,) = events(sign_in_audit.SIGN_IN_FAILED)
    assert event.subject_user == account_admin
    assert event.detail.startswith("may not use the console now")


def test_an_unknown_email_is_recorded_as_typed_without_a_person(db):
    browser().post(SIGN_IN, {"username": "  Nobody@Example.COM ", "password": "guess"})

    (event,) = events(sign_in_audit.SIGN_IN_FAILED)
    assert event.subject_user is None
    assert event.subject_label == "nobody@example.com"
    assert event.portal_account is None  # MSSP admins see it in the global log
    assert event.detail == "no console user with this email"


def test_a_password_typed_into_the_email_field_is_not_recorded(db):
    browser().post(SIGN_IN, {"username": "hunter2-secret", "password": "x"})

    (event,) = events(sign_in_audit.SIGN_IN_FAILED)
    assert event.subject_label == "(not an email address)"
    assert no_secret_in_events("hunter2-secret")


def test_an_attack_on_an_account_admin_shows_in_their_account(account_admin, account):
    browser().post(SIGN_IN, {"username": account_admin.email, "password": "guess"})

    (event,) = events(sign_in_audit.SIGN_IN_FAILED)
    assert event.subject_user == account_admin
    assert event.portal_account == account


def test_a_console_lockout_is_recorded(technician, settings):
    settings.SIGN_IN_MAX_FAILURES = 2
    client = browser()
    for _ in range(2):
        client.post(SIGN_IN, {"username": technician.email, "password": "wrong"})
    response = client.post(SIGN_IN, {"username": technician.email, "password": PASSWORD})

    assert response.status_code == 429
    assert len(events(sign_in_audit.SIGN_IN_FAILED)) == 2
    (locked,) = events(sign_in_audit.LOCKED_OUT)
    assert locked.subject_user == technician
    assert locked.outcome == AuditEvent.Outcome.REFUSED
    assert "Too many failed sign-in attempts" in locked.detail
    assert not events(sign_in_audit.SIGN_IN)


def test_the_support_admin_login_is_its_own_door(technician):
    browser().post(
        reverse("admin:login"), {"username": technician.email, "password": "wrong", "next": "/"}
    )

    (event,) = events(sign_in_audit.SIGN_IN_FAILED)
    assert event.after["door"] == "support_admin"


def test_signing_out_is_recorded(technician):
    client = browser()
    client.post(SIGN_IN, {"username": technician.email, "password": PASSWORD})
    client.post(reverse("logout"))

    (event,) = events(sign_in_audit.SIGN_OUT)
    assert event.actor == technician
    assert event.after == {"door": "console"}
    assert event.user_agent == CHROME


def test_the_user_agent_is_cut_to_300_printable_characters(technician):
    long_agent = "Agent\x00" + "x" * 500
    Client(headers={"User-Agent": long_agent}).post(
        SIGN_IN, {"username": technician.email, "password": PASSWORD}
    )
    (event,) = events(sign_in_audit.SIGN_IN)
    assert len(event.user_agent) == 300
    assert event.user_agent.startswith("Agentxxx")


def test_a_bad_forwarded_address_records_no_ip_instead_of_failing(technician, settings):
    settings.TRUSTED_PROXY_HOPS = 1
    response = Client(headers={"X-Forwarded-For": "unknown"}).post(
        SIGN_IN, {"username": technician.email, "password": PASSWORD}
    )
    assert response.status_code == 302
    assert events(sign_in_audit.SIGN_IN)[0].ip_address is None


# --- The portal ---


def test_a_portal_password_sign_in_is_recorded(pia, account):
    response = browser().post(PORTAL_LOGIN, {"email": pia.email, "password": PASSWORD})
    assert response.status_code == 302

    (event,) = events(sign_in_audit.SIGN_IN)
    assert event.subject_user == pia
    assert event.portal_account == account
    assert event.after == {"door": "portal", "method": "password"}
    assert event.ip_address == "203.0.113.7"


def test_a_wrong_portal_password_is_recorded_for_the_account(pia, account):
    browser().post(PORTAL_LOGIN, {"email": pia.email, "password": "wrong"})

    (event,) = events(sign_in_audit.SIGN_IN_FAILED)
    assert event.subject_user == pia
    assert event.portal_account == account
    assert event.detail == "wrong password"
    assert event.after == {"door": "portal", "method": "password"}


def test_an_unknown_portal_email_is_still_the_accounts_event(account):
    browser().post(PORTAL_LOGIN, {"email": "Ghost@Acme.example", "password": "wrong"})

    (event,) = events(sign_in_audit.SIGN_IN_FAILED)
    assert event.subject_user is None
    assert event.subject_label == "ghost@acme.example"
    assert event.portal_account == account
    assert event.detail == "no user with this email"


def test_a_disabled_user_with_the_right_password_is_a_refused_sign_in(pia, mssp_admin):
    lifecycle.disable(pia, by=mssp_admin)
    browser().post(PORTAL_LOGIN, {"email": pia.email, "password": PASSWORD})

    (event,) = events(sign_in_audit.SIGN_IN_FAILED)
    assert event.subject_user == pia
    assert event.detail == "user disabled"


def test_a_portal_lockout_is_recorded(pia, account, settings):
    settings.SIGN_IN_MAX_FAILURES = 1
    client = browser()
    client.post(PORTAL_LOGIN, {"email": pia.email, "password": "wrong"})
    response = client.post(PORTAL_LOGIN, {"email": pia.email, "password": PASSWORD})

    assert response.status_code == 429
    (locked,) = events(sign_in_audit.LOCKED_OUT)
    assert locked.subject_user == pia
    assert locked.portal_account == account
    assert locked.after == {"door": "portal", "method": "password"}


def test_a_refused_portal_sign_in_is_one_insert(pia):
    with CaptureQueriesContext(connection) as queries:
        browser().post(PORTAL_LOGIN, {"email": pia.email, "password": "wrong"})
    audit_insert = 'INSERT INTO "accounts_auditevent"'
    inserts = [q["sql"] for q in queries if q["sql"].startswith(audit_insert)]
    assert len(inserts) == 1


def test_a_sign_in_by_code_and_a_wrong_code_are_recorded(pia):
    code = tokens.issue_code(pia)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    client = browser()
    client.post(PORTAL_CODE, {"email": pia.email, "code": wrong})
    response = client.post(PORTAL_CODE, {"email": pia.email, "code": code})
    assert response.status_code == 302

    (failed,) = events(sign_in_audit.SIGN_IN_FAILED)
    assert failed.subject_user == pia
    assert failed.after == {"door": "portal", "method": "code"}
    (signed_in,) = events(sign_in_audit.SIGN_IN)
    assert signed_in.after == {"door": "portal", "method": "code"}
    assert no_secret_in_events(code, wrong)


def test_a_code_lockout_is_recorded(pia, account, settings):
    settings.SIGN_IN_MAX_FAILURES = 1
    client = browser()
    client.post(PORTAL_CODE, {"email": pia.email, "code": "000000"})
    response = client.post(PORTAL_CODE, {"email": pia.email, "code": "111111"})
    assert response.status_code == 429
    (locked,) = events(sign_in_audit.LOCKED_OUT)
    assert locked.after == {"door": "portal", "method": "code"}
    assert locked.portal_account == account


@pytest.mark.parametrize(
    ("purpose", "url_name", "method"),
    [
        (TokenPurpose.LOGIN_EMAIL, "portal-link", "link"),
        (TokenPurpose.MAGIC_LINK, "portal-magic-link", "magic_link"),
    ],
)
def test_a_sign_in_by_link_names_the_kind_of_link(pia, purpose, url_name, method):
    secret = tokens.issue(pia, purpose)
    response = browser().post(reverse(url_name, args=["acme", secret]))
    assert response.status_code == 302

    (event,) = events(sign_in_audit.SIGN_IN)
    assert event.subject_user == pia
    assert event.after == {"door": "portal", "method": method}
    assert no_secret_in_events(secret)


def test_a_portal_sign_out_is_recorded(pia):
    client = browser()
    client.post(PORTAL_LOGIN, {"email": pia.email, "password": PASSWORD})
    client.post(reverse("portal-logout", args=["acme"]))
    (event,) = events(sign_in_audit.SIGN_OUT)
    assert event.subject_user == pia
    assert event.after == {"door": "portal"}


# --- Who sees them ---


def _refused_at(account, action, when, label="x@acme.example"):
    event = AuditEvent.objects.create(
        action=action, portal_account=account, subject_label=label, outcome="refused"
    )
    AuditEvent.objects.filter(pk=event.pk).update(created_at=when)


def test_the_account_log_has_a_sign_ins_filter(account_admin_client, pia, other_account, account):
    browser().post(PORTAL_LOGIN, {"email": pia.email, "password": "wrong"})
    browser().post(PORTAL_LOGIN, {"email": pia.email, "password": PASSWORD})
    lifecycle.reset_password(pia, by=None)  # not a sign-in event
    _refused_at(other_account, sign_in_audit.SIGN_IN_FAILED, timezone.now(), "gus@globex.example")

    page = account_admin_client.get(reverse("audit-log", args=["acme"]) + "?action=sign-ins")
    html = page.content.decode()

    assert page.status_code == 200
    assert "2 events match these filters" in html
    assert "Failed to sign in" in html
    assert "Signed in" in html
    assert "Portal, password" in html
    assert "Chrome on Windows" in html
    assert "Sent password reset" not in html.split('id="audit-rows"')[1]
    assert "gus@globex.example" not in html


def test_the_global_log_shows_every_accounts_sign_ins(admin_client, pia, other_account):
    browser().post(PORTAL_LOGIN, {"email": pia.email, "password": "wrong"})
    _refused_at(other_account, sign_in_audit.LOCKED_OUT, timezone.now(), "gus@globex.example")

    html = admin_client.get(reverse("audit-log-global") + "?action=sign-ins-refused").content
    assert b"pia@acme.example" in html
    assert b"gus@globex.example" in html


def test_the_dashboard_counts_refused_sign_ins_of_the_last_day_and_week(
    account_admin_client, account, other_account
):
    now = timezone.now()
    for hours in (1, 5, 30, 100):
        _refused_at(account, sign_in_audit.SIGN_IN_FAILED, now - timedelta(hours=hours))
    _refused_at(account, sign_in_audit.SIGN_IN_FAILED, now - timedelta(days=8))  # too old
    _refused_at(account, sign_in_audit.LOCKED_OUT, now - timedelta(hours=2))
    _refused_at(other_account, sign_in_audit.SIGN_IN_FAILED, now - timedelta(hours=1))

    page = account_admin_client.get(reverse("dashboard", args=["acme"]))
    section = page.content.decode().split('id="sign-ins-heading"')[1].split("</section>")[0]
    failed, locked = section.split('<a class="stat')[1:3]

    assert '<span class="stat-number">2</span>' in failed  # in 24 hours
    assert "4 in the last 7 days" in failed
    assert '<span class="stat-number">1</span>' in locked
    assert "1 in the last 7 days" in locked
    assert reverse("audit-log", args=["acme"]) + "?action=sign-ins-refused" in section


def test_the_dashboard_counts_read_only_the_recent_window(account):
    """The count query names the window, so the index on (portal_account, action, created_at)
    reads the week only, whatever the account's history."""
    with CaptureQueriesContext(connection) as queries:
        counts = sign_in_audit.refused_counts(AuditEvent.objects.filter(portal_account=account))
    assert counts == {"failed_day": 0, "failed_week": 0, "locked_day": 0, "locked_week": 0}
    (query,) = queries
    assert '"created_at" >=' in query["sql"]
    assert '"action" IN' in query["sql"]


def test_a_person_sees_their_own_sign_in_history(technician, technician_client, mssp_admin):
    browser().post(SIGN_IN, {"username": technician.email, "password": "wrong"})
    browser().post(SIGN_IN, {"username": mssp_admin.email, "password": "wrong"})

    html = technician_client.get(reverse("my-sessions")).content.decode()
    assert "Recent sign-in activity" in html
    assert "Failed to sign in" in html
    assert "Console, password" in html
    assert "203.0.113.7" in html
    assert html.count("Failed to sign in") == 1  # the MSSP admin's is not theirs
