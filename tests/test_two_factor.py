"""A second factor for the console: TOTP with recovery codes, required for MSSP staff (and for
an account's admin when the account says so), asked again before the most dangerous actions,
and guarding the support admin too. Wrong codes are refused and counted."""

import re
import time

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import two_factor
from accounts.models import AuditEvent
from api.models import ApiToken
from tests.factories import PASSWORD, PortalUserFactory
from tests.signing_in import authenticator_code

SIGN_IN = reverse("login")
VERIFY = reverse("two-factor-verify")
SET_UP = reverse("two-factor-set-up")


def password_only(user):
    client = Client()
    response = client.post(SIGN_IN, {"username": user.email, "password": PASSWORD})
    assert response.status_code == 302
    return client


def app_for(user):
    return TOTPDevice.objects.create(user=user, name=two_factor.APP_NAME, confirmed=True)


def set_up_app(client):
    """Go through the set-up page as a person with their phone: returns (device, codes)."""
    page = client.get(SET_UP)
    assert 'src="data:image/svg+xml;base64,' in page.content.decode()
    device = TOTPDevice.objects.get(confirmed=False)
    done = client.post(SET_UP, {"code": authenticator_code(device), "next": "/"})
    assert done.status_code == 200, done.content.decode()
    codes = re.findall(r"<li><code>(\w+)</code></li>", done.content.decode())
    return TOTPDevice.objects.get(pk=device.pk), codes


def test_mssp_staff_with_a_password_only_must_set_up_the_app_first(mssp_admin):
    client = password_only(mssp_admin)

    response = client.get(reverse("portal-accounts"))

    assert response.status_code == 302
    assert response.url.startswith(SET_UP)


def test_setting_up_turns_it_on_and_shows_ten_recovery_codes_once(mssp_admin):
    client = password_only(mssp_admin)

    device, codes = set_up_app(client)

    assert device.confirmed
    assert len(codes) == 10
    assert client.get(reverse("portal-accounts")).status_code == 200
    assert AuditEvent.objects.filter(action="turn_on_two_factor", actor=mssp_admin).exists()


def test_a_wrong_first_code_does_not_turn_it_on(mssp_admin):
    client = password_only(mssp_admin)
    client.get(SET_UP)

    response = client.post(SET_UP, {"code": "000000"})

    assert response.status_code == 400
    assert "That code is not right" in response.content.decode()
    assert not two_factor.is_on(mssp_admin)


def test_signing_in_asks_for_the_code_after_the_password(mssp_admin):
    device = app_for(mssp_admin)
    client = password_only(mssp_admin)

    assert client.get(reverse("portal-accounts")).url.startswith(VERIFY)
    done = client.post(VERIFY, {"code": authenticator_code(device), "next": "/accounts/"})

    assert done.status_code == 302
    assert done.url == "/accounts/"
    assert client.get(reverse("portal-accounts")).status_code == 200


def test_a_wrong_code_is_refused_and_counted(mssp_admin):
    app_for(mssp_admin)
    client = password_only(mssp_admin)

    response = client.post(VERIFY, {"code": "123456"})

    assert response.status_code == 400
    assert "That code is not right" in response.content.decode()
    assert AuditEvent.objects.filter(action="two_factor_failed", actor=mssp_admin).count() == 1
    assert client.get(reverse("portal-accounts")).url.startswith(VERIFY)


def test_wrong_codes_go_through_the_sign_in_throttle(mssp_admin):
    device = app_for(mssp_admin)
    client = password_only(mssp_admin)
    for _ in range(5):
        client.post(VERIFY, {"code": "123456"})
        # A patient guesser: django-otp's own delay after a wrong code has passed.
        TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_timestamp=None)

    response = client.post(VERIFY, {"code": authenticator_code(device)})

    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert AuditEvent.objects.filter(action="sign_in_locked_out", subject_user=mssp_admin).exists()


def test_a_code_right_after_a_wrong_one_waits_a_moment(mssp_admin):
    device = app_for(mssp_admin)
    client = password_only(mssp_admin)
    client.post(VERIFY, {"code": "123456"})

    response = client.post(VERIFY, {"code": authenticator_code(device)})

    assert response.status_code == 400
    assert "Wait a few seconds" in response.content.decode()


def test_a_recovery_code_works_once(mssp_admin):
    setting_up = password_only(mssp_admin)
    _, codes = set_up_app(setting_up)

    client = password_only(mssp_admin)
    assert client.post(VERIFY, {"code": codes[0], "next": "/accounts/"}).status_code == 302
    again = password_only(mssp_admin)
    assert again.post(VERIFY, {"code": codes[0]}).status_code == 400
    assert two_factor.recovery_codes_left(mssp_admin) == 9


def test_an_account_admin_needs_it_only_when_the_account_says_so(account_admin, account):
    client = password_only(account_admin)
    dashboard = reverse("dashboard", args=[account.slug])
    assert client.get(dashboard).status_code == 200

    account.require_two_factor = True
    account.save(update_fields=["require_two_factor"])

    assert client.get(dashboard).url.startswith(SET_UP)


def test_the_support_admin_asks_for_the_code_too(mssp_admin):
    app_for(mssp_admin)
    client = password_only(mssp_admin)

    response = client.get("/support/", follow=True)

    assert response.redirect_chain[-1][0].startswith(VERIFY)


def test_the_support_admin_login_leads_to_the_code(mssp_admin):
    app_for(mssp_admin)
    client = Client()
    client.post("/support/login/", {"username": mssp_admin.email, "password": PASSWORD})

    response = client.get("/support/", follow=True)

    assert response.redirect_chain[-1][0].startswith(VERIFY)


# --- Step-up before the most dangerous actions ---


def make_stale(client):
    session = client.session
    session[two_factor.VERIFIED_AT] = time.time() - 3600
    session.save()


def test_creating_an_api_token_asks_for_a_fresh_code(admin_client, mssp_admin, account):
    url = reverse("api-tokens", args=[account.slug])
    make_stale(admin_client)

    asked = admin_client.post(url, {"name": "Salesforce sync", "scope": "sync"})

    assert asked.status_code == 302
    assert asked.url.startswith(VERIFY)
    assert "step_up=1" in asked.url
    assert not ApiToken.objects.exists()
    device = TOTPDevice.objects.get(user=mssp_admin)
    admin_client.post(VERIFY, {"code": authenticator_code(device, steps_ahead=1)})
    created = admin_client.post(url, {"name": "Salesforce sync", "scope": "sync"})
    assert created.status_code == 200
    assert ApiToken.objects.filter(name="Salesforce sync").exists()


def test_after_the_fresh_code_the_token_form_comes_back_as_it_was_filled_in(
    admin_client, mssp_admin, account
):
    url = reverse("api-tokens", args=[account.slug])
    make_stale(admin_client)
    filled = {"name": "Salesforce sync", "scope": "read"}
    admin_client.post(url, filled, headers={"Referer": f"http://testserver{url}"})

    device = TOTPDevice.objects.get(user=mssp_admin)
    back = admin_client.post(
        VERIFY, {"code": authenticator_code(device, steps_ahead=1), "next": url}
    )
    assert back.url == url
    page = admin_client.get(url).content.decode()
    assert 'value="Salesforce sync"' in page
    assert re.search(r'value="read"[^>]*checked', page)
    # Given once: the next visit shows an empty form.
    assert 'value="Salesforce sync"' not in admin_client.get(url).content.decode()
    assert not ApiToken.objects.exists()  # nothing was created without the person


def test_replacing_the_app_asks_for_a_fresh_code_of_the_old_one(admin_client, mssp_admin):
    """A stale session must not swap the authenticator (which throws the old one and the
    recovery codes away, and counts as a fresh code): that would hand every step-up action,
    and the account's second factor, to whoever holds the session."""
    old = TOTPDevice.objects.get(user=mssp_admin)
    make_stale(admin_client)

    page = admin_client.get(SET_UP)
    replaced = admin_client.post(SET_UP, {"code": "123456"})

    for asked in (page, replaced):
        assert asked.status_code == 302
        assert asked.url.startswith(VERIFY)
        assert "step_up=1" in asked.url
    assert list(TOTPDevice.objects.filter(user=mssp_admin)) == [old]
    admin_client.post(VERIFY, {"code": authenticator_code(old, steps_ahead=1)})
    new, codes = set_up_app(admin_client)
    assert list(TOTPDevice.objects.filter(user=mssp_admin)) == [new]
    assert len(codes) == 10


def test_making_an_account_admin_asks_for_a_fresh_code(admin_client, account, partner_role):
    user = PortalUserFactory(portal_account=account, role=partner_role, state="enabled")
    make_stale(admin_client)

    response = admin_client.post(reverse("user-action", args=[account.slug, user.pk, "make-admin"]))

    assert response.url.startswith(VERIFY)
    user.refresh_from_db()
    assert not user.is_account_admin


def test_a_magic_link_for_someone_else_asks_for_a_fresh_code(
    technician_client, account, partner_role
):
    user = PortalUserFactory(portal_account=account, role=partner_role, state="enabled")
    make_stale(technician_client)

    response = technician_client.post(reverse("user-links", args=[account.slug, user.pk]))

    assert response.url.startswith(VERIFY)
    assert not user.login_tokens.exists()


def test_without_a_second_factor_a_dangerous_action_leads_to_setting_it_up(
    account_admin, account, partner_role
):
    client = password_only(account_admin)
    user = PortalUserFactory(portal_account=account, role=partner_role, state="enabled")

    response = client.post(reverse("user-links", args=[account.slug, user.pk]))

    assert response.url.startswith(SET_UP)
    page = client.get(response.url).content.decode()
    assert "What you asked for" in page  # the set-up page says why the person is there
    assert "then do it again" in page
    assert "What you asked for" not in client.get(SET_UP).content.decode()


# --- Managing it ---


def test_required_staff_cannot_turn_it_off(admin_client, mssp_admin):
    device = TOTPDevice.objects.get(user=mssp_admin)
    admin_client.post(
        reverse("two-factor-turn-off"), {"code": authenticator_code(device, steps_ahead=1)}
    )
    assert two_factor.is_on(mssp_admin)


def test_someone_who_may_turns_it_off_with_a_code(account_admin_client, account_admin):
    device = TOTPDevice.objects.get(user=account_admin)
    account_admin_client.post(
        reverse("two-factor-turn-off"), {"code": authenticator_code(device, steps_ahead=1)}
    )
    assert not two_factor.is_on(account_admin)


def test_the_next_page_never_leaves_the_site(mssp_admin):
    device = app_for(mssp_admin)
    client = password_only(mssp_admin)
    done = client.post(
        VERIFY, {"code": authenticator_code(device), "next": "https://evil.example/"}
    )
    assert done.url == "/"


@pytest.mark.parametrize("page", ["two-factor", "two-factor-set-up"])
def test_the_pages_answer_signed_in_staff(admin_client, page):
    assert admin_client.get(reverse(page)).status_code in (200, 302)


def test_an_mssp_admin_sets_the_accounts_policy_in_its_settings(admin_client, account):
    url = reverse("portal-account-settings", args=[account.slug])
    form = {
        "name": account.name,
        "slug": account.slug,
        "partner_licenses": account.partner_licenses,
        "customer_licenses": account.customer_licenses,
        "employee_licenses": account.employee_licenses,
        "require_two_factor": "on",
    }
    assert "must sign in with two-factor" in admin_client.get(url).content.decode()

    admin_client.post(url, form)

    account.refresh_from_db()
    assert account.require_two_factor
    event = AuditEvent.objects.get(action="update_portal_account")
    assert event.after == {"require_two_factor": True}


def test_the_header_links_to_the_two_factor_page(admin_client):
    page = admin_client.get(reverse("portal-accounts")).content.decode()
    assert f'href="{reverse("two-factor")}"' in page


def test_adding_changing_or_rotating_a_webhook_endpoint_asks_for_a_fresh_code(
    account_admin_client, account
):
    from webhooks.models import Endpoint

    hook = Endpoint.objects.create(
        portal_account=account, url="https://hooks.example.com/in", events=["user.enabled"]
    )
    secret = hook.secret
    make_stale(account_admin_client)
    fields = {"url": "https://evil.example.net/", "events": ["user.enabled"], "active": "on"}

    added = account_admin_client.post(reverse("webhook-endpoints", args=[account.slug]), fields)
    changed = account_admin_client.post(
        reverse("webhook-endpoint", args=[account.slug, hook.pk]), fields
    )
    rotated = account_admin_client.post(
        reverse("webhook-endpoint-rotate", args=[account.slug, hook.pk])
    )

    for response in (added, changed, rotated):
        assert response.status_code == 302
        assert response.url.startswith(VERIFY)
    hook.refresh_from_db()
    assert (hook.url, hook.secret) == ("https://hooks.example.com/in", secret)
    assert Endpoint.objects.count() == 1


def test_a_session_owing_its_second_factor_sees_no_menu_it_cannot_use(mssp_admin):
    """Until the code is given (or the app set up) every console link leads back to this step:
    the page offers only signing out. Once through, the menus are back."""
    portal_accounts = f'href="{reverse("portal-accounts")}"'
    client = password_only(mssp_admin)
    page = client.get(SET_UP).content.decode()
    assert portal_accounts not in page
    assert f'href="{reverse("my-sessions")}"' not in page
    assert f'action="{reverse("logout")}"' in page

    device, _codes = set_up_app(client)
    assert portal_accounts in client.get(reverse("two-factor")).content.decode()

    again = password_only(mssp_admin)
    assert portal_accounts not in again.get(VERIFY).content.decode()
    again.post(VERIFY, {"code": authenticator_code(device, steps_ahead=1), "next": "/"})
    assert portal_accounts in again.get(VERIFY + "?step_up=1").content.decode()


def test_after_the_fresh_code_the_magic_link_form_keeps_the_section_picked(
    account_admin, account, partner_role
):
    """The links form posts through HTMX: the page it came from gets the section back."""
    device = app_for(account_admin)
    client = password_only(account_admin)
    client.post(VERIFY, {"code": authenticator_code(device)})
    make_stale(client)
    user = PortalUserFactory(portal_account=account, role=partner_role, state="enabled")
    page_url = reverse("user-links", args=[account.slug, user.pk])

    asked = client.post(
        page_url,
        {"section": "courses"},
        headers={"HX-Request": "true", "HX-Current-URL": f"http://testserver{page_url}"},
    )
    assert asked.headers["HX-Redirect"].startswith(VERIFY)
    client.post(VERIFY, {"code": authenticator_code(device, steps_ahead=1), "step_up": "1"})
    page = client.get(page_url).content.decode()
    assert re.search(r'<option value="courses"[^>]*selected', page)
