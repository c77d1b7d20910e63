"""From "Add user" in the console to a signed-in portal user, in a real browser: a technician
invites a new partner, the invitation email's link opens the activation page, the new user sets a
password, lands on the portal home and opens a section; then signs out and back in with a
one-time code. Every portal page on the way is checked with axe-core and photographed."""

import re

import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import EmailKind, OutboxEmail, User, UserState
from tests.factories import PASSWORD
from tests.signing_in import console_sign_in

pytest_plugins = ["tests.browser"]
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    # See tests/test_browser_console.py: WhiteNoise warns about the uncollected STATIC_ROOT.
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

NEW_PASSWORD = "a-brand-new-Passw0rd"


def _only_message_to(address):
    """The one email sent to an address. The live server answers in another thread of this
    process, and Celery runs eagerly there, so its emails land in this process's locmem outbox."""
    (message,) = [message for message in mail.outbox if message.to == [address]]
    return message


def _path(url):
    # Emails carry PORTAL_BASE_URL; the browser talks to the live server.
    return re.sub(r"^https?://[^/]+", "", url)


def test_from_invite_in_the_console_to_a_signed_in_portal_user(
    browser_page, account, partner_role, technician, screenshots, accessibility, live_server
):
    from playwright.sync_api import expect

    page = browser_page

    # The technician invites Katherine from the account's Users page.
    console_sign_in(page, technician, PASSWORD)
    expect(page.get_by_text(technician.name)).to_be_visible()
    page.goto(reverse("users", args=[account.slug]))
    page.get_by_role("link", name="Add user").click()
    dialog = page.locator("#dialog-slot dialog[open]")
    expect(dialog.get_by_role("heading", name="Add a portal user")).to_be_visible()
    dialog.get_by_label("Name", exact=True).fill("Katherine Johnson")
    dialog.get_by_label("Email", exact=True).fill("katherine@example.com")
    # No user type to pick: the role's type (partner) is the user's.
    dialog.get_by_label("Role").select_option(label=partner_role.name)
    screenshots.take(page, "console add user filled in")
    dialog.get_by_role("button", name="Add user").click()
    expect(page.locator(".messages")).to_contain_text("Katherine Johnson added and invited.")
    screenshots.take(page, "console user added")

    # The invitation: one outbox row, sent, and its email.
    katherine = User.objects.get(portal_account=account, email="katherine@example.com")
    row = OutboxEmail.objects.get(user=katherine)
    assert (row.kind, row.status) == (EmailKind.INVITATION, OutboxEmail.Status.SENT)
    invitation = _only_message_to("katherine@example.com")
    assert invitation.subject == "You're invited to Acme Portal"
    link = re.search(r"http://\S+/p/acme/activate/\S+/", invitation.body).group(0)

    # A new browser session (the invited person's own) opens the link and activates.
    page.context.clear_cookies()
    page.goto(_path(link))
    expect(page.get_by_role("heading", name="Activate your account")).to_be_visible()
    expect(page.get_by_text("katherine@example.com")).to_be_visible()
    accessibility.check(page, "activation page")
    screenshots.take(page, "portal activate")
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password confirmation").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Activate and sign in").click()

    # Signed in at the portal home; a section opens.
    expect(page).to_have_url(re.compile(r"/p/acme/$"))
    expect(page.get_by_role("heading", name="Welcome, Katherine Johnson")).to_be_visible()
    accessibility.check(page, "portal home")
    screenshots.take(page, "portal home")
    page.get_by_role("navigation", name="Portal sections").get_by_role(
        "link", name="Courses"
    ).click()
    expect(page).to_have_url(re.compile(r"\?section=courses$"))
    expect(page.get_by_role("heading", name="Courses", level=1)).to_be_visible()
    accessibility.check(page, "portal section")
    screenshots.take(page, "portal section courses")
    assert User.objects.get(pk=katherine.pk).state == UserState.ENABLED

    # Sign out, then back in with a one-time code.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_text("Invited but not activated yet?")).to_be_visible()
    accessibility.check(page, "portal sign-in page")
    screenshots.take(page, "portal sign in")
    page.get_by_label("Email").fill("katherine@example.com")
    page.get_by_role("button", name="Email me a code").click()
    expect(page.get_by_role("heading", name="Enter your sign-in code")).to_be_visible()
    expect(page.get_by_label("Email")).to_have_value("katherine@example.com")
    accessibility.check(page, "portal code page")
    screenshots.take(page, "portal code sent")
    code_email = [m for m in mail.outbox if m.subject == "Your sign-in code for Acme Portal"][-1]
    code = re.search(r"^\s+(\d{6})$", code_email.body, re.MULTILINE).group(1)
    page.get_by_label("6-digit code").fill("000000" if code != "000000" else "111111")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That code is not right.")
    accessibility.check(page, "portal code page, wrong code")
    screenshots.take(page, "portal code wrong")
    page.get_by_label("6-digit code").fill(code)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Welcome, Katherine Johnson")).to_be_visible()

    # A link that no longer works leads to a new one.
    page.goto(_path(link))
    expect(page.get_by_role("heading", name="This link cannot be used")).to_be_visible()
    expect(page.get_by_role("button", name="Email me a new invitation")).to_be_visible()
    accessibility.check(page, "portal used link")
    screenshots.take(page, "portal used invitation link")
    page.get_by_role("link", name="Go to sign in").click()
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page.get_by_role("heading", name="Forgot your password?")).to_be_visible()
    accessibility.check(page, "portal forgot password")
    screenshots.take(page, "portal forgot password")
    page.get_by_label("Email").fill("katherine@example.com")
    page.get_by_role("button", name="Email me a reset link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    accessibility.check(page, "portal email sent")
    screenshots.take(page, "portal check your email")

    accessibility.assert_clean()
