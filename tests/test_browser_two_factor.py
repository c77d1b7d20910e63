"""Two-factor sign-in in a real browser: an MSSP admin signs in with a password, is sent to set
up an authenticator app, types the key shown into "the app" (the test computes its codes),
turns two-factor on and sees the recovery codes; signs out, signs in again, is refused a wrong
code (which is counted) and gets in with the right one. Every page is checked with axe-core."""

import base64
import re
import time

import pytest
from django.urls import reverse
from django_otp.oath import TOTP

from accounts.models import AuditEvent, UserKind
from tests.factories import PASSWORD, StaffFactory

pytest_plugins = ["tests.browser"]
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]


class AuthenticatorApp:
    """What a phone app does with the key from the set-up page."""

    def __init__(self, typed_key):
        key = typed_key.replace(" ", "")
        self.key = base64.b32decode(key + "=" * (-len(key) % 8))

    def code(self, steps_ahead=0):
        totp = TOTP(self.key, step=30, t0=0, digits=6)
        totp.time = time.time() + 30 * steps_ahead
        return f"{totp.token():06d}"

    @staticmethod
    def wait_for_a_steady_step(margin=5):
        """A code typed in the last seconds of its 30-second step may reach the server in the
        next one: django-otp accepts it and records a drift of -1 step, which then moves the
        window of every later code (the sign-in's code a step ahead fell outside it)."""
        left = 30 - time.time() % 30
        if left < margin:
            time.sleep(left + 0.2)


def sign_in_with_password(page, email):
    page.goto(reverse("login"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_an_mssp_admin_sets_up_two_factor_and_signs_in_with_a_code(
    browser_page, screenshots, accessibility
):
    from playwright.sync_api import expect

    page = browser_page
    admin = StaffFactory(kind=UserKind.MSSP_ADMIN, name="Mia Mssp", email="mia@mssp.example")

    # The password alone leads to setting up the app.
    sign_in_with_password(page, admin.email)
    expect(page.get_by_role("heading", name="Set up two-factor sign-in")).to_be_visible()
    expect(page.get_by_role("img", name=re.compile("QR code"))).to_be_visible()
    accessibility.check(page, "set-up page")
    screenshots.take(page, "set up")
    app = AuthenticatorApp(page.locator("code.secret-key").inner_text())

    app.wait_for_a_steady_step()
    page.get_by_label("Code from the app").fill(app.code())
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.get_by_role("heading", name="Two-factor sign-in is on")).to_be_visible()
    expect(page.locator(".recovery-codes li")).to_have_count(10)
    accessibility.check(page, "recovery codes")
    screenshots.take(page, "recovery codes")
    page.get_by_role("link", name="I have saved them, continue").click()
    expect(page).to_have_url(re.compile(re.escape(reverse("portal-accounts")) + "$"))

    # Signed out and in again: the code is asked for; a wrong one is refused and counted.
    page.get_by_role("button", name="Sign out").click()
    sign_in_with_password(page, admin.email)
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    accessibility.check(page, "code page")
    page.get_by_label("Code").fill("000000")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_contain_text("That code is not right")
    screenshots.take(page, "wrong code")
    assert AuditEvent.objects.filter(action="two_factor_failed", actor=admin).count() == 1
    page.goto(reverse("portal-accounts"))
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    time.sleep(1.1)  # the app's next code takes a person longer than django-otp's delay

    page.get_by_label("Code").fill(app.code(steps_ahead=1))  # the set-up used this step's code
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(re.escape(reverse("portal-accounts")) + "$"))
    expect(page.get_by_text("Mia Mssp")).to_be_visible()
    screenshots.take(page, "signed in")
