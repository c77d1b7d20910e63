"""The console on a phone (390 px wide): the menus fold behind one Menu button, the users list
shows cards, and the first user's Actions are in the first screen and work."""

import pytest
from django.urls import reverse

from accounts.models import UserKind
from tests.browser import axe_violations
from tests.factories import PASSWORD, PortalUserFactory, StaffFactory
from tests.signing_in import console_sign_in

pytest_plugins = ["tests.browser"]
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

PHONE = {"width": 390, "height": 844}


def within_first_screen(page, locator):
    box = locator.bounding_box()
    return box["y"] + box["height"] <= PHONE["height"] and box["x"] + box["width"] <= PHONE["width"]


def test_on_a_phone_the_first_users_actions_are_in_the_first_screen(
    browser_page, account, partner_role, screenshots
):
    from playwright.sync_api import expect

    page = browser_page
    page.set_viewport_size(PHONE)
    technician = StaffFactory(kind=UserKind.TECHNICIAN, name="Theo Tech", email="theo@mssp.example")
    users = [
        PortalUserFactory(portal_account=account, role=partner_role, name=f"Ada Larsen {n}")
        for n in range(30)
    ]
    console_sign_in(page, technician, PASSWORD)
    page.goto(reverse("users", args=[account.slug]))

    first_row = page.locator(f"#user-{users[0].pk}")
    actions = first_row.locator("summary", has_text="Actions")
    assert within_first_screen(page, actions)
    # The section tabs wait behind Menu; so do the top bar's links.
    expect(page.locator(".subnav")).to_be_hidden()
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    screenshots.take(page, "users on a phone")
    assert not axe_violations(page)

    actions.click()
    first_row.locator(".menu").get_by_role("link", name="Disable", exact=True).click()
    expect(page.locator("#dialog-slot dialog[open]")).to_contain_text("Ada Larsen 0")
    page.keyboard.press("Escape")

    menu = page.get_by_role("button", name="Menu")
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_role("link", name="Contacts")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    screenshots.take(page, "menu open")
    page.keyboard.press("Escape")
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(menu).to_be_focused()
    page.get_by_role("button", name="Menu").click()
    page.get_by_role("link", name="Contacts").click()
    expect(page).to_have_url(reverse("contacts", args=[account.slug]))


def test_on_a_wide_screen_nothing_folds(browser_page, account, partner_role):
    from playwright.sync_api import expect

    page = browser_page
    technician = StaffFactory(kind=UserKind.TECHNICIAN, name="Theo Tech", email="theo@mssp.example")
    console_sign_in(page, technician, PASSWORD)
    page.goto(reverse("users", args=[account.slug]))
    expect(page.get_by_role("button", name="Menu")).to_be_hidden()
    expect(page.locator(".subnav")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
