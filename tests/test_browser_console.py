"""The console in a real browser: a technician signs in, opens an account's users, reinvites an
unconfirmed user and disables an enabled one through the confirm dialogs, and sees the tab
counts move. Every page and dialog on the way is checked with axe-core."""

import re

import pytest
from django.urls import reverse

from accounts import lifecycle
from accounts.models import EmailKind, OutboxEmail, User, UserKind, UserState, UserType
from tests.factories import PASSWORD, PortalUserFactory, StaffFactory
from tests.signing_in import console_sign_in

pytest_plugins = ["tests.browser"]
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    # The session-wide live server starts before the tests' settings drop STATIC_ROOT, and
    # WhiteNoise warns that the (uncollected) folder is missing; the static handler serves CSS/JS.
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]


@pytest.fixture
def journey_data(account, partner_role):
    technician = StaffFactory(kind=UserKind.TECHNICIAN, name="Theo Tech", email="theo@mssp.example")
    enabled = [
        PortalUserFactory(
            portal_account=account, role=partner_role, name=name, email=email, last_login=None
        )
        for name, email in [
            ("Ada Lovelace", "ada@acme.example"),
            ("Alan Turing", "alan@acme.example"),
        ]
    ]
    unconfirmed = [
        lifecycle.invite(
            account,
            user_type=UserType.PARTNER,
            role=partner_role,
            by=technician,
            name=name,
            email=email,
        )
        for name, email in [
            ("Grace Hopper", "grace@acme.example"),
            ("Ken Thompson", "ken@acme.example"),
        ]
    ]
    return technician, enabled, unconfirmed


def tab(page, label):
    return page.locator("nav.tabs a", has_text=label)


def tab_count(page, label):
    return int(tab(page, label).locator(".count").inner_text())


def confirm_in_dialog(page, row_id, action_label):
    """Actions menu on the row -> the action -> the <dialog> -> its confirm button."""
    from playwright.sync_api import expect

    row = page.locator(f"#{row_id}")
    row.locator("summary", has_text="Actions").click()
    row.get_by_role("link", name=action_label, exact=True).click()
    dialog = page.locator("#dialog-slot dialog[open]")
    expect(dialog).to_be_visible()
    return dialog


def test_reinvite_and_disable_through_the_dialogs(
    browser_page, journey_data, account, screenshots, accessibility
):
    from playwright.sync_api import expect

    page = browser_page
    technician, (ada, alan), (grace, ken) = journey_data

    # Sign in.
    page.goto(reverse("login"))
    accessibility.check(page, "sign-in page")
    screenshots.take(page, "sign-in")
    console_sign_in(page, technician, PASSWORD)
    expect(page).to_have_url(re.compile(re.escape(reverse("portal-accounts")) + "$"))
    expect(page.get_by_text("Theo Tech")).to_be_visible()
    accessibility.check(page, "portal accounts list")
    screenshots.take(page, "portal-accounts")

    # The account, then its Users page.
    page.get_by_role("link", name=account.name).click()
    expect(page).to_have_url(re.compile(re.escape(reverse("dashboard", args=[account.slug]))))
    accessibility.check(page, "dashboard")
    screenshots.take(page, "dashboard")
    page.get_by_role("navigation", name=account.name).get_by_role(
        "link", name="Users", exact=True
    ).click()
    expect(page.get_by_role("heading", name="Users", level=1)).to_be_visible()
    expect(page.locator("#user-list")).to_contain_text("Ada Lovelace")
    assert (tab_count(page, "Enabled"), tab_count(page, "Unconfirmed")) == (2, 2)
    assert tab_count(page, "Disabled") == 0
    accessibility.check(page, "users, Enabled tab")
    screenshots.take(page, "users-enabled")

    # The Add user dialog opens, passes axe, and Cancel closes it without a request.
    page.get_by_role("link", name="Add user").click()
    add_dialog = page.locator("#dialog-slot dialog[open]")
    expect(add_dialog.get_by_role("heading", name="Add a portal user")).to_be_visible()
    accessibility.check(page, "add user dialog")
    screenshots.take(page, "add-user-dialog")
    add_dialog.get_by_role("link", name="Cancel").click()
    expect(page.locator("#dialog-slot dialog[open]")).to_have_count(0)

    # Unconfirmed tab (an HTMX swap that pushes the URL).
    tab(page, "Unconfirmed").click()
    expect(page).to_have_url(re.compile(r"\?tab=unconfirmed$"))
    expect(tab(page, "Unconfirmed")).to_have_attribute("aria-current", "page")
    expect(page.locator("#user-list")).to_contain_text("Grace Hopper")
    expect(page.locator(f"#user-{ada.pk}")).to_have_count(0)
    accessibility.check(page, "users, Unconfirmed tab")
    screenshots.take(page, "users-unconfirmed")

    # Reinvite Grace through the dialog.
    dialog = confirm_in_dialog(page, f"user-{grace.pk}", "Reinvite")
    expect(dialog.get_by_role("heading", name="Reinvite Grace Hopper?")).to_be_visible()
    expect(dialog).to_contain_text("previous invitation link stops working")
    accessibility.check(page, "reinvite dialog")
    screenshots.take(page, "reinvite-dialog")
    dialog.get_by_role("button", name="Reinvite").click()
    expect(page.locator(".messages")).to_contain_text("Invitation sent again to Grace Hopper.")
    expect(page.locator("#dialog-slot dialog[open]")).to_have_count(0)
    assert tab_count(page, "Unconfirmed") == 2
    accessibility.check(page, "users after reinvite")
    screenshots.take(page, "reinvited")
    assert OutboxEmail.objects.filter(user=grace, kind=EmailKind.REINVITATION).count() == 1
    assert User.objects.get(pk=grace.pk).state == UserState.UNCONFIRMED

    # Enabled tab: disable Alan through the dialog; the counts move.
    tab(page, "Enabled").click()
    expect(tab(page, "Enabled")).to_have_attribute("aria-current", "page")
    expect(page.locator("#user-list")).to_contain_text("Alan Turing")
    dialog = confirm_in_dialog(page, f"user-{alan.pk}", "Disable")
    expect(dialog.get_by_role("heading", name="Disable Alan Turing?")).to_be_visible()
    expect(dialog).to_contain_text("will not be able to sign in")
    accessibility.check(page, "disable dialog")
    screenshots.take(page, "disable-dialog")
    dialog.get_by_role("button", name="Disable").click()
    expect(page.locator(".messages")).to_contain_text("Access disabled for Alan Turing.")
    expect(tab(page, "Enabled").locator(".count")).to_have_text("1")
    expect(tab(page, "Disabled").locator(".count")).to_have_text("1")
    expect(page.locator(f"#user-{alan.pk}")).to_have_count(0)
    accessibility.check(page, "users after disable")
    screenshots.take(page, "disabled")

    # The Disabled tab shows him, and who disabled him.
    tab(page, "Disabled").click()
    expect(page.locator(f"#user-{alan.pk}")).to_contain_text("by Theo Tech")
    accessibility.check(page, "users, Disabled tab")
    screenshots.take(page, "users-disabled")

    alan.refresh_from_db()
    assert alan.state == UserState.DISABLED
    assert alan.disabled_by == technician
    assert User.objects.get(pk=ada.pk).state == UserState.ENABLED
    assert User.objects.get(pk=ken.pk).state == UserState.UNCONFIRMED
    accessibility.assert_clean()
