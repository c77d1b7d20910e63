"""A row's Actions menu is never cut off by the table: in a one-row search result, and on the
last row of a long page (where it opens upwards), a real mouse click reaches its items."""

import re
import time

import pytest
from django.urls import reverse

from accounts.models import UserKind
from tests.factories import PASSWORD, PortalUserFactory, StaffFactory
from tests.signing_in import console_sign_in

pytest_plugins = ["tests.browser"]
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]


@pytest.fixture
def signed_in(browser_page, account, partner_role):
    technician = StaffFactory(kind=UserKind.TECHNICIAN, name="Theo Tech", email="theo@mssp.example")
    console_sign_in(browser_page, technician, PASSWORD)
    return browser_page


def eventually(page, holds, seconds=3):
    """Whether `holds()` comes true within `seconds`. The page places a menu in its `toggle` and
    `scroll` events, which fire after the click or the scroll: on a busy machine a first look
    can come before them."""
    deadline = time.monotonic() + seconds
    while not holds():
        if time.monotonic() > deadline:
            return False
        page.wait_for_timeout(50)
    return True


def menu_box_is_on_screen(page, menu):
    def on_screen():
        box = menu.bounding_box()
        return box["y"] >= 0 and box["y"] + box["height"] <= page.viewport_size["height"]

    return eventually(page, on_screen)


def test_the_menu_of_a_one_row_search_result_can_be_clicked(
    signed_in, account, partner_role, screenshots
):
    from playwright.sync_api import expect

    page = signed_in
    ada = PortalUserFactory(portal_account=account, role=partner_role, name="Ada Lovelace")
    page.goto(reverse("users", args=[account.slug]) + "?q=Ada")
    row = page.locator(f"#user-{ada.pk}")

    row.locator("summary", has_text="Actions").click()
    menu = row.locator(".menu")
    expect(menu).to_be_visible()
    assert menu_box_is_on_screen(page, menu)
    # The window as it is (a full-page screenshot resizes it, which closes a floating menu).
    page.screenshot(path=str(screenshots.folder / "one-row-menu.png"))
    menu.get_by_role("link", name="Disable", exact=True).click()

    expect(page.locator("#dialog-slot dialog[open]")).to_contain_text("Ada Lovelace")


def test_the_last_rows_menu_opens_upwards_within_the_window(
    signed_in, account, partner_role, screenshots
):
    from playwright.sync_api import expect

    page = signed_in
    page.set_viewport_size({"width": 1366, "height": 700})
    users = [
        PortalUserFactory(portal_account=account, role=partner_role, name=f"User {n:02d}")
        for n in range(12)
    ]
    page.goto(reverse("users", args=[account.slug]))
    last = page.locator(f"#user-{users[-1].pk}")
    last.scroll_into_view_if_needed()
    page.mouse.wheel(0, 2000)  # the last row at the bottom of the window

    last.locator("summary", has_text="Actions").click()
    menu = last.locator(".menu")
    expect(menu).to_be_visible()
    assert menu_box_is_on_screen(page, menu)
    page.screenshot(path=str(screenshots.folder / "last-row-menu.png"))
    menu.get_by_role("link", name="Sign-in links").click()
    expect(page).to_have_url(re.compile(r"/links/$"))


def test_a_destructive_dialog_starts_on_cancel_and_gives_focus_back(
    signed_in, account, partner_role
):
    from playwright.sync_api import expect

    page = signed_in
    ada = PortalUserFactory(portal_account=account, role=partner_role, name="Ada Lovelace")
    page.goto(reverse("users", args=[account.slug]))
    row = page.locator(f"#user-{ada.pk}")
    actions = row.locator("summary", has_text="Actions")

    actions.click()
    row.locator(".menu").get_by_role("link", name="Delete", exact=True).click()
    dialog = page.locator("#dialog-slot dialog[open]")
    expect(dialog.get_by_role("link", name="Cancel")).to_be_focused()
    page.keyboard.press("Enter")  # Enter cancels: nothing is deleted
    expect(page.locator("#dialog-slot dialog[open]")).to_have_count(0)
    expect(actions).to_be_focused()

    actions.click()
    row.locator(".menu").get_by_role("link", name="Delete", exact=True).click()
    expect(page.locator("#dialog-slot dialog[open]")).to_be_visible()
    page.keyboard.press("Escape")
    expect(actions).to_be_focused()
    assert ada.__class__.objects.filter(pk=ada.pk).exists()


def test_an_open_menu_follows_its_row_when_the_page_scrolls(signed_in, account, partner_role):
    from playwright.sync_api import expect

    page = signed_in
    page.set_viewport_size({"width": 1366, "height": 700})
    users = [
        PortalUserFactory(portal_account=account, role=partner_role, name=f"User {n:02d}")
        for n in range(30)
    ]
    page.goto(reverse("users", args=[account.slug]))
    row = page.locator(f"#user-{users[8].pk}")
    row.scroll_into_view_if_needed()
    summary = row.locator("summary", has_text="Actions")
    summary.click()
    menu = row.locator(".menu")
    expect(menu).to_be_visible()

    def gap_below_summary():
        return menu.bounding_box()["y"] - (
            summary.bounding_box()["y"] + summary.bounding_box()["height"]
        )

    before = gap_below_summary()
    page.mouse.wheel(0, 60)  # a small scroll, as a touch pad or a finger gives
    page.wait_for_function("window.scrollY > 0")
    expect(menu).to_be_visible()
    assert eventually(page, lambda: abs(gap_below_summary() - before) < 2)  # under its button
    page.mouse.wheel(0, 3000)  # the row leaves the window: its menu closes
    expect(menu).to_be_hidden()
