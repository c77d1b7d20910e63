"""A contact's Portal user card in a real browser: a technician signs in, finds a contact
without a portal user on the Contacts page, enables it from its card with a role, and sees the
card turn Unconfirmed in place, without a page load. Every page on the way is checked with
axe-core."""

import re

import pytest
from django.urls import reverse

from accounts.models import EmailKind, OutboxEmail, User, UserKind, UserState
from tests.factories import PASSWORD, ContactFactory, StaffFactory
from tests.signing_in import console_sign_in

pytest_plugins = ["tests.browser"]
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    # The session-wide live server starts before the tests' settings drop STATIC_ROOT, and
    # WhiteNoise warns that the (uncollected) folder is missing; the static handler serves CSS/JS.
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]


def test_enable_a_contact_from_its_card(
    browser_page, account, partner_role, inactive_role, screenshots, accessibility
):
    from playwright.sync_api import expect

    page = browser_page
    technician = StaffFactory(kind=UserKind.TECHNICIAN, name="Theo Tech", email="theo@mssp.example")
    jane = ContactFactory(
        portal_account=account,
        name="Jane Doe",
        email="jane@example.com",
        crm_account_name="Wayne Enterprises",
    )
    ContactFactory(portal_account=account, name="Bruce Wayne", email="bruce@example.com")

    console_sign_in(page, technician, PASSWORD)
    expect(page).to_have_url(re.compile(re.escape(reverse("portal-accounts")) + "$"))

    # The account's Contacts page, searched for Jane (an HTMX swap of the results).
    page.goto(reverse("dashboard", args=[account.slug]))
    page.get_by_role("navigation", name=account.name).get_by_role("link", name="Contacts").click()
    expect(page.get_by_role("heading", name="Contacts", level=1)).to_be_visible()
    page.get_by_label("Search contacts").fill("jane@")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"\?q=jane%40$"))
    expect(page.locator("#contact-list")).not_to_contain_text("Bruce Wayne")
    expect(page.locator(f"#contact-{jane.pk}")).to_contain_text("No user")
    accessibility.check(page, "contacts, searched")
    screenshots.take(page, "contacts-searched")

    page.get_by_role("link", name="Jane Doe").click()
    expect(page.get_by_role("heading", name="Jane Doe", level=1)).to_be_visible()
    card = page.locator("#portal-user-card")
    expect(card).to_contain_text("No user")
    role_picker = card.get_by_label("Role")
    assert role_picker.locator("option").all_inner_texts() == ["Pick a role", "Partner User"]
    accessibility.check(page, "contact without a user")
    screenshots.take(page, "contact-no-user")

    # Enable from the card: only the card changes; the page is not loaded again.
    page.evaluate("window.stillTheSamePage = true")
    role_picker.select_option(label="Partner User")
    card.get_by_role("button", name="Enable as portal user").click()
    expect(card).to_contain_text("Jane Doe is now a portal user and sent an invitation.")
    expect(card.locator(".portal-user-head")).to_contain_text("Unconfirmed")
    expect(card.get_by_role("link", name="Reinvite…")).to_be_visible()  # it asks first
    assert page.evaluate("window.stillTheSamePage") is True
    contact_path = reverse("contact", args=[account.slug, jane.pk])
    expect(page).to_have_url(re.compile(re.escape(contact_path) + "$"))
    accessibility.check(page, "contact after enabling")
    screenshots.take(page, "contact-unconfirmed")

    user = User.objects.get(contact=jane)
    assert (user.state, user.role) == (UserState.UNCONFIRMED, partner_role)
    assert OutboxEmail.objects.filter(user=user, kind=EmailKind.INVITATION).count() == 1
    accessibility.assert_clean()
