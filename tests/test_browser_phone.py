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
    # The column headers sort here; the Sort by select is for the cards of a phone.
    expect(page.get_by_label("Sort by")).to_be_hidden()


def test_on_a_phone_the_lists_sort_with_the_sort_by_select(
    browser_page, account, partner_role, screenshots
):
    from playwright.sync_api import expect

    from tests.factories import ContactFactory

    page = browser_page
    page.set_viewport_size(PHONE)
    technician = StaffFactory(kind=UserKind.TECHNICIAN, name="Theo Tech", email="theo@mssp.example")
    for name in ("Bea Berg", "Abe Aalto", "Cal Cruz"):
        PortalUserFactory(portal_account=account, role=partner_role, name=name)
    console_sign_in(page, technician, PASSWORD)
    page.goto(reverse("users", args=[account.slug]))
    names = page.locator(".table.users .row-name")
    expect(names).to_have_text(["Abe Aalto", "Bea Berg", "Cal Cruz"])
    sort_by = page.get_by_label("Sort by")
    assert within_first_screen(page, sort_by)

    sort_by.select_option(label="Name, Z to A")

    expect(names).to_have_text(["Cal Cruz", "Bea Berg", "Abe Aalto"])
    expect(page).to_have_url(reverse("users", args=[account.slug]) + "?tab=enabled&sort=-name")
    expect(page.get_by_label("Sort by")).to_have_value("-name")
    screenshots.take(page, "users sorted on a phone")
    assert not axe_violations(page)

    # The contacts list sorts the same way (its own sorts).
    for name, crm in (("Zed Quinn", "Alpha"), ("Yan Quill", "Beta")):
        ContactFactory(portal_account=account, name=name, crm_account_name=crm)
    page.goto(reverse("contacts", args=[account.slug]) + "?q=Qui")
    contact_names = page.locator(".table.contacts .row-name")
    expect(contact_names).to_have_text(["Yan Quill", "Zed Quinn"])
    page.get_by_label("Sort by").select_option(label="CRM account, Z to A")
    expect(page).to_have_url(reverse("contacts", args=[account.slug]) + "?q=Qui&sort=-crm")
    # This order is the one before too: wait for the new rows (and select) to be swapped in, or
    # the next choice goes to the select being replaced.
    page.wait_for_load_state("networkidle")
    expect(contact_names).to_have_text(["Yan Quill", "Zed Quinn"])
    page.get_by_label("Sort by").select_option(label="CRM account, A to Z")
    expect(contact_names).to_have_text(["Zed Quinn", "Yan Quill"])
    expect(page).to_have_url(reverse("contacts", args=[account.slug]) + "?q=Qui&sort=crm")
    screenshots.take(page, "contacts sorted on a phone")
    assert not axe_violations(page)


def test_without_javascript_the_sort_by_button_sorts(
    playwright_browser, live_server, account, partner_role
):
    from playwright.sync_api import expect

    context = playwright_browser.new_context(
        base_url=live_server.url, viewport=PHONE, java_script_enabled=False
    )
    page = context.new_page()
    technician = StaffFactory(kind=UserKind.TECHNICIAN, name="Theo Tech", email="theo@mssp.example")
    for name in ("Bea Berg", "Abe Aalto"):
        PortalUserFactory(portal_account=account, role=partner_role, name=name)
    console_sign_in(page, technician, PASSWORD)
    page.goto(reverse("users", args=[account.slug]))

    page.get_by_label("Sort by").select_option(label="Name, Z to A")
    page.get_by_role("button", name="Sort", exact=True).click()

    expect(page.locator(".table.users .row-name")).to_have_text(["Bea Berg", "Abe Aalto"])
    assert "sort=-name" in page.url
    context.close()


def test_at_1366_an_mssp_admins_section_tabs_fit_one_line(browser_page, account):
    """All eleven tabs of an MSSP admin: a second line with one tab on it read as broken."""
    page = browser_page
    page.set_viewport_size({"width": 1366, "height": 900})
    admin = StaffFactory(kind=UserKind.MSSP_ADMIN, name="Mia Mssp", email="mia@mssp.example")
    console_sign_in(page, admin, PASSWORD)
    page.goto(reverse("users", args=[account.slug]))
    tops = page.locator(".subnav a").evaluate_all(
        "links => links.map(link => Math.round(link.getBoundingClientRect().top))"
    )
    assert len(tops) >= 11
    assert len(set(tops)) == 1, tops


def test_on_a_phone_tables_that_scroll_sideways_can_be_reached_by_keyboard(
    browser_page, account, partner_role, accessibility
):
    """A table wider than a phone scrolls inside its frame; axe's scrollable-region-focusable
    asks that a keyboard can reach it (it failed on the user page, the sign-in links, the
    audit log and the sessions page)."""
    from playwright.sync_api import expect

    from accounts import lifecycle

    page = browser_page
    page.set_viewport_size(PHONE)
    technician = StaffFactory(kind=UserKind.TECHNICIAN, name="Theo Tech", email="theo@mssp.example")
    ada = PortalUserFactory(portal_account=account, role=partner_role, name="Ada Larsen")
    lifecycle.send_login_email(ada, by=technician)
    lifecycle.reset_password(ada, by=technician)
    console_sign_in(page, technician, PASSWORD)
    pages = {
        "user page": reverse("user", args=[account.slug, ada.pk]),
        "sign-in links": reverse("user-links", args=[account.slug, ada.pk]),
        "audit log": reverse("audit-log", args=[account.slug]),
        "sessions": reverse("my-sessions"),
    }
    for where, url in pages.items():
        page.goto(url)
        accessibility.check(page, where)
    accessibility.assert_clean()
    page.goto(pages["user page"])
    history = page.get_by_role("region", name="History table")
    history.focus()
    expect(history).to_be_focused()
