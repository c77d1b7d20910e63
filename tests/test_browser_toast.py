"""The outcome of a row action shows where the eye is: on a long list, the message comes as a
toast fixed in the window (not only at the top of the list, scrolled out of view), focus goes
back to the row's Actions button, and the toast can be dismissed. Without JavaScript the same
message is in the page's messages area (tests/test_users_page.py)."""

import os

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
WIDTHS = [(1366, 700), (390, 760)]


@pytest.fixture
def signed_in(browser_page, account, partner_role):
    technician = StaffFactory(kind=UserKind.TECHNICIAN, name="Theo Tech", email="theo@mssp.example")
    console_sign_in(browser_page, technician, PASSWORD)
    return browser_page


def in_window(page, locator):
    box = locator.bounding_box()
    height = page.viewport_size["height"]
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height


@pytest.mark.parametrize(("width", "height"), WIDTHS)
def test_a_row_action_far_down_a_long_list_answers_in_a_toast(
    signed_in, account, partner_role, screenshots, width, height
):
    from playwright.sync_api import expect

    page = signed_in
    page.set_viewport_size({"width": width, "height": height})
    users = [
        PortalUserFactory(portal_account=account, role=partner_role, name=f"User {n:02d}")
        for n in range(24)
    ]
    page.goto(reverse("users", args=[account.slug]))
    last = page.locator(f"#user-{users[-1].pk}")
    # At once, not with the wheel: a scroll event arriving later would close the open menu.
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    actions = last.locator("summary", has_text="Actions")
    actions.scroll_into_view_if_needed()  # and its scroll events past: they close open menus
    page.evaluate("new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
    actions.click()
    last.locator(".menu").get_by_role("link", name="Send login email").click()
    dialog = page.locator("#dialog-slot dialog[open]")
    expect(dialog).to_contain_text("Send a login email to User 23?")
    dialog.get_by_role("button", name="Send login email").click()

    toast = page.locator("#toasts .messages")
    expect(toast).to_contain_text("Login email sent to User 23.")
    assert in_window(page, toast)
    focused = page.locator(":focus").bounding_box()
    box = toast.bounding_box()
    assert box["y"] >= focused["y"] + focused["height"] or box["y"] + box["height"] <= focused["y"]
    assert page.evaluate("window.scrollY") > 0  # the list stayed where it was
    expect(page.locator(f"#user-{users[-1].pk} summary", has_text="Actions")).to_be_focused()
    # The window as it is: a full-page screenshot would resize it.
    shots = os.environ.get("POLISH_SHOTS_DIR", str(screenshots.folder))
    os.makedirs(shots, exist_ok=True)
    page.screenshot(path=f"{shots}/toast-{width}.png")

    toast.get_by_role("button", name="Dismiss the message").click()
    expect(page.locator("#toasts .messages")).to_have_count(0)


def test_a_message_after_a_full_page_load_is_a_toast_too(signed_in, account, partner_role):
    from playwright.sync_api import expect

    page = signed_in
    ada = PortalUserFactory(portal_account=account, role=partner_role, name="Ada Lovelace")
    page.goto(reverse("user-action", args=[account.slug, ada.pk, "disable"]))
    page.get_by_role("button", name="Disable").click()  # a plain POST and a redirect
    expect(page.locator("#toasts .messages")).to_contain_text("Access disabled for Ada Lovelace.")
    assert page.locator("main .messages").count() == 0  # moved, not copied: said once
