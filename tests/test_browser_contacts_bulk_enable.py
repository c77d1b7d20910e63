"""The contacts page's bulk enable, as an admin does it: tick two contacts, pick a role in the
bulk bar, read the confirmation (Cancel has the focus), confirm, and read each one's outcome.
Also at phone width, where the list shows cards."""

import pytest
from django.urls import reverse

from accounts.models import User, UserKind, UserState
from tests.factories import PASSWORD, ContactFactory, PortalUserFactory, StaffFactory
from tests.signing_in import console_sign_in

pytest_plugins = ["tests.browser"]
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1366", "390"])
def test_tick_two_pick_a_role_confirm_and_read_the_outcomes(
    browser_page, account, partner_role, customer_role, screenshots, accessibility, viewport
):
    from playwright.sync_api import expect

    page = browser_page
    page.set_viewport_size(viewport)
    technician = StaffFactory(kind=UserKind.TECHNICIAN, name="Theo Tech", email="theo@mssp.example")
    account.customer_licenses = 1
    account.save(update_fields=["customer_licenses"])
    for name in ("Ada Larsen", "Olga Novak", "Piet Smit"):
        ContactFactory(portal_account=account, name=name, crm_account_name="Northwind")
    PortalUserFactory(
        portal_account=account, role=partner_role, name="Ulla Uses", state=UserState.ENABLED
    )
    console_sign_in(page, technician, PASSWORD)
    page.goto(reverse("contacts", args=[account.slug]))

    bar = page.get_by_role("group", name="Bulk actions")
    enable = bar.get_by_role("button", name="Enable as portal users")
    expect(enable).to_be_disabled()
    page.get_by_label("Select Ada Larsen").check()
    page.get_by_label("Select Olga Novak").check()
    expect(enable).to_be_enabled()
    bar.get_by_label("Role for the new users").select_option(label="Customer User")
    screenshots.take(page, "two-ticked-role-chosen")
    accessibility.check(page, "contacts with the bulk bar")

    enable.click()
    dialog = page.locator("#dialog-slot dialog[open]")
    expect(dialog).to_contain_text("Enable 2 contacts as portal users?")
    expect(dialog).to_contain_text("Ada Larsen and Olga Novak")
    expect(dialog).to_contain_text("Customer licenses: 2 needed, 1 free.")
    expect(dialog.get_by_role("link", name="Cancel")).to_be_focused()
    screenshots.take(page, "confirm")
    accessibility.check(page, "bulk enable confirmation")

    dialog.get_by_role("button", name="Enable 2").click()
    outcome = page.locator(".bulk-outcome")
    expect(outcome).to_contain_text("1 created, 1 failed")
    expect(outcome).to_be_focused()  # the button that opened the dialog is gone
    rows = outcome.locator("tbody tr")
    expect(rows.nth(0)).to_contain_text("Ada Larsen")
    expect(rows.nth(0)).to_contain_text("Created")
    expect(rows.nth(1)).to_contain_text("Olga Novak")
    expect(rows.nth(1)).to_contain_text("No Customer licenses left: 1 of 1 in use.")
    expect(page.locator("#dialog-slot dialog[open]")).to_have_count(0)
    # Ada has a user now: her row lost its box; Olga's keeps it for another try.
    expect(page.get_by_label("Select Ada Larsen")).to_have_count(0)
    expect(page.get_by_label("Select Olga Novak")).to_have_count(1)
    screenshots.take(page, "outcome")
    accessibility.check(page, "bulk enable outcome")
    accessibility.assert_clean()
    assert User.objects.get(contact__name="Ada Larsen").role == customer_role
