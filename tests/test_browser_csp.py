"""The console under its Content-Security-Policy in a real browser: an MSSP admin signs in and
walks the main pages, and the page scripts still work (copy the portal URL, the row menus and
HTMX dialogs, a magic link that selects itself). The browser must report no CSP violation and
no console error on the way."""

import re

import pytest
from django.urls import reverse

from accounts.models import UserKind
from tests.factories import PASSWORD, ContactFactory, PortalUserFactory, StaffFactory
from tests.signing_in import console_sign_in

pytest_plugins = ["tests.browser"]
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    # As in test_browser_console.py: the live server starts before STATIC_ROOT is dropped.
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

# Runs in every document before the page's own scripts (Playwright injects it over DevTools,
# which the CSP does not govern) and turns each violation event into a console line.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`securitypolicyviolation: ${event.violatedDirective} blocked ` +
    `${event.blockedURI || "inline"} at ${event.sourceFile}:${event.lineNumber}`);
});
"""

WATCHED_TOPICS = ("Content Security Policy", "securitypolicyviolation", "Permissions-Policy")


@pytest.fixture
def world(account, partner_role):
    admin = StaffFactory(kind=UserKind.MSSP_ADMIN, name="Mia Admin", email="mia@mssp.example")
    contact = ContactFactory(portal_account=account, name="Pia Portal", email="pia@acme.example")
    pia = PortalUserFactory(
        portal_account=account,
        role=partner_role,
        contact=contact,
        name="Pia Portal",
        email="pia@acme.example",
    )
    PortalUserFactory(portal_account=account, role=partner_role, name="Ada Lovelace")
    return admin, contact, pia


@pytest.fixture
def console_problems(browser_page):
    """Every console line about the CSP (Chromium's own report and the violation events
    above) or the Permissions-Policy header (a feature this Chromium does not know), and
    every other console error."""
    found = []

    def record(message):
        text = message.text
        if any(topic in text for topic in WATCHED_TOPICS):
            found.append(text)
        elif message.type == "error":
            found.append(f"console error: {text}")

    browser_page.context.add_init_script(REPORT_VIOLATIONS)
    browser_page.on("console", record)
    return found


def test_the_console_runs_under_its_content_security_policy(
    browser_page, console_problems, live_server, world, account, screenshots
):
    from playwright.sync_api import expect

    page = browser_page
    admin, contact, pia = world
    page.set_viewport_size({"width": 1366, "height": 900})
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)

    console_sign_in(page, admin, PASSWORD)
    expect(page).to_have_url(re.compile(re.escape(reverse("portal-accounts")) + "$"))
    # The seat bars are SVG now, no inline style: one is drawn per user type.
    expect(page.locator("svg.bar rect").first).to_be_attached()
    screenshots.take(page, "portal-accounts")

    # Dashboard: its Copy button is console.js's now (the inline script is gone).
    page.goto(reverse("dashboard", args=[account.slug]))
    copy = page.get_by_role("button", name="Copy")
    expect(copy).to_be_visible()
    copy.click()
    expect(page.locator("#portal-url-status")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == page.input_value("#portal-url")
    screenshots.take(page, "dashboard")

    # Users: tabs and search swap over HTMX (allowEval off), a row menu opens a dialog.
    page.goto(reverse("users", args=[account.slug]))
    expect(page.locator("#user-list")).to_contain_text("Ada Lovelace")
    page.get_by_label("Search users").fill("Pia")
    expect(page).to_have_url(re.compile(r"q=Pia"))
    expect(page.locator("#user-list")).not_to_contain_text("Ada Lovelace")
    row = page.locator(f"#user-{pia.pk}")
    row.locator("summary", has_text="Actions").click()
    row.get_by_role("link", name="Disable", exact=True).click()
    dialog = page.locator("#dialog-slot dialog[open]")
    expect(dialog.get_by_role("heading", name="Disable Pia Portal?")).to_be_visible()
    screenshots.take(page, "users-disable-dialog")
    dialog.get_by_role("link", name="Cancel").click()
    expect(page.locator("#dialog-slot dialog[open]")).to_have_count(0)
    screenshots.take(page, "users")

    # Contact page: a magic link swapped into the card selects itself, ready to copy.
    page.goto(reverse("contact", args=[account.slug, contact.pk]))
    page.get_by_role("button", name="Create a magic link").click()
    field = page.locator("#magic-link-url")
    expect(field).to_be_focused()
    assert field.evaluate("f => f.selectionStart === 0 && f.selectionEnd === f.value.length")
    expect(page.locator("[data-copy-field=magic-link-url]")).to_be_visible()
    screenshots.take(page, "contact-magic-link")

    assert console_problems == []
