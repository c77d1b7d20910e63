"""Issue 15, defect 2 in a real browser: an MSSP admin adds a Customer role on the Roles page
(which lists each role's user type), then adds a person with it from the Users page, whose
dialog has no user type to pick (the role picker groups the roles by type), and the new user is
listed as a Customer. Every page on the way is checked with axe-core."""

import re

import pytest
from django.urls import reverse

from accounts.models import Role, User, UserKind, UserType
from tests.factories import PASSWORD, StaffFactory
from tests.signing_in import console_sign_in

pytest_plugins = ["tests.browser"]
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]


def test_a_role_of_a_type_makes_users_of_that_type(
    browser_page, account, partner_role, screenshots, accessibility
):
    from playwright.sync_api import expect

    page = browser_page
    admin = StaffFactory(kind=UserKind.MSSP_ADMIN, name="Mia Admin", email="mia@mssp.example")
    console_sign_in(page, admin, PASSWORD)
    expect(page).to_have_url(re.compile(re.escape(reverse("portal-accounts")) + "$"))

    page.goto(reverse("roles", args=[account.slug]))
    table = page.locator(".roles-table")
    expect(table.locator("tr", has_text="Partner User")).to_contain_text("Partner")
    page.get_by_label("Role name").fill("Buyer")
    page.get_by_label("User type").select_option(label="Customer")
    page.get_by_role("button", name="Add role").click()
    expect(page.locator(".messages")).to_contain_text("Customer role Buyer added.")
    expect(table.locator("tr", has_text="Buyer")).to_contain_text("Customer")
    accessibility.check(page, "roles with their user types")
    screenshots.take(page, "roles with types")

    page.goto(reverse("users", args=[account.slug]))
    page.get_by_role("link", name="Add user").click()
    dialog = page.locator("#dialog-slot dialog[open]")
    expect(dialog.get_by_role("heading", name="Add a portal user")).to_be_visible()
    expect(dialog.get_by_label("User type")).to_have_count(0)
    picker = dialog.get_by_label("Role")
    groups = picker.locator("optgroup")
    assert [groups.nth(i).get_attribute("label") for i in range(groups.count())] == [
        "Customer roles",
        "Partner roles",
    ]
    dialog.get_by_label("Name", exact=True).fill("Carla Customer")
    dialog.get_by_label("Email", exact=True).fill("carla@example.com")
    picker.select_option(label="Buyer")
    accessibility.check(page, "add user without a user type")
    screenshots.take(page, "add user with a customer role")
    dialog.get_by_role("button", name="Add user").click()
    expect(page.locator(".messages")).to_contain_text("Carla Customer added and invited.")
    row = page.locator("tr", has_text="Carla Customer")
    expect(row).to_contain_text("Customer")
    expect(row).to_contain_text("Buyer")

    user = User.objects.get(email="carla@example.com")
    assert (user.role, user.user_type) == (Role.objects.get(name="Buyer"), UserType.CUSTOMER)
    accessibility.assert_clean()
