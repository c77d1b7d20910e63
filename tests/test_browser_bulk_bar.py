"""The users page's bulk buttons wait for a selection: disabled with nothing ticked, enabled once
a row (or "All matching", or select-all) is ticked, disabled again when it is unticked."""

import pytest
from django.urls import reverse

from accounts.models import UserKind, UserState
from tests.factories import PASSWORD, PortalUserFactory, StaffFactory
from tests.signing_in import console_sign_in

pytest_plugins = ["tests.browser"]
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]


def test_bulk_buttons_wait_for_a_ticked_row(browser_page, account, partner_role, screenshots):
    from playwright.sync_api import expect

    page = browser_page
    technician = StaffFactory(kind=UserKind.TECHNICIAN, name="Theo Tech", email="theo@mssp.example")
    for name in ("Ada Larsen", "Olga Novak"):
        PortalUserFactory(
            portal_account=account, role=partner_role, name=name, state=UserState.UNCONFIRMED
        )
    console_sign_in(page, technician, PASSWORD)
    page.goto(reverse("users", args=[account.slug]) + "?tab=unconfirmed")

    bar = page.get_by_role("group", name="Bulk actions")
    buttons = bar.locator("button[name=action]")
    expect(buttons).to_have_count(3)  # Reinvite, Disable, Delete
    for index in range(3):
        expect(buttons.nth(index)).to_be_disabled()
    screenshots.take(page, "bulk-bar-nothing-ticked")

    ada = page.get_by_label("Select Ada Larsen")
    ada.check()
    for index in range(3):
        expect(buttons.nth(index)).to_be_enabled()
    ada.uncheck()
    expect(bar.get_by_role("button", name="Reinvite")).to_be_disabled()

    # Select-all and "All matching" count as a selection too.
    page.get_by_label("Select all on this page").check()
    expect(bar.get_by_role("button", name="Reinvite")).to_be_enabled()
    page.get_by_label("Select all on this page").uncheck()
    expect(bar.get_by_role("button", name="Reinvite")).to_be_disabled()
    bar.get_by_label("All 2 matching").check()
    expect(bar.get_by_role("button", name="Reinvite")).to_be_enabled()
    bar.get_by_label("All 2 matching").uncheck()
    expect(bar.get_by_role("button", name="Reinvite")).to_be_disabled()

    # Ticked, the button asks with the names (the dialog of the Users page).
    ada.check()
    bar.get_by_role("button", name="Reinvite").click()
    dialog = page.locator("#dialog-slot dialog[open]")
    expect(dialog).to_contain_text("Reinvite 1 user?")
    expect(dialog).to_contain_text("Ada Larsen")
