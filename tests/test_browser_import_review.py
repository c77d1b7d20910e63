"""The import review when nothing can be created: the Start button looks disabled (not a
faded primary button that reads as pressable), the reason is on the page next to it and tied
to it for screen readers, and the failing rows can be downloaded before anything is imported.
Screenshots at 1366 and 390 px."""

import os
import re

import pytest
from django.urls import reverse

from accounts.models import UserKind
from tests.factories import PASSWORD, StaffFactory
from tests.signing_in import console_sign_in

pytest_plugins = ["tests.browser"]
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]
FAILING = b"ContactId,Role\n003NOSUCHCONTACT0001,Partner User\n003NOSUCHCONTACT0002,Nope\n"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.mark.parametrize(("width", "height"), [(1366, 900), (390, 844)])
def test_a_review_with_nothing_to_create_says_why_start_is_disabled(
    browser_page, account, partner_role, screenshots, accessibility, width, height
):
    from playwright.sync_api import expect

    page = browser_page
    technician = StaffFactory(kind=UserKind.TECHNICIAN, name="Theo Tech", email="theo@mssp.example")
    console_sign_in(page, technician, PASSWORD)
    page.set_viewport_size({"width": width, "height": height})
    page.goto(reverse("import-new", args=[account.slug]))
    page.set_input_files(
        "input[type=file]", {"name": "people.csv", "mimeType": "text/csv", "buffer": FAILING}
    )
    page.get_by_role("button", name="Upload and map columns").click()
    page.get_by_role("button", name="Check the rows").click()

    start = page.get_by_role("button", name="Start import")
    expect(start).to_be_disabled()
    reason = page.locator("#nothing-to-do")
    expect(reason).to_contain_text("Nothing can be created: every row fails")
    expect(start).to_have_attribute("aria-describedby", "nothing-to-do")
    accent = page.evaluate(
        "getComputedStyle(document.documentElement).getPropertyValue('--accent').trim()"
    )
    background = start.evaluate("(button) => getComputedStyle(button).backgroundColor")
    assert background != page.evaluate(
        "(color) => { const probe = document.createElement('i'); probe.style.color = color;"
        " document.body.append(probe); const rgb = getComputedStyle(probe).color;"
        " probe.remove(); return rgb; }",
        accent,
    )
    accessibility.check(page, "review with nothing to create")
    download = page.get_by_role("link", name="Download the 2 failing rows (CSV)")
    expect(download).to_be_visible()
    with page.expect_download() as fetched:
        download.click()
    assert fetched.value.suggested_filename == "people-failures-dry-run.csv"

    # Changing an option checks the file again, in place.
    page.get_by_label("Send activation emails").check()
    expect(page.locator("#review")).to_contain_text("Every row was checked with activation emails")
    expect(page.locator("#nothing-to-do")).to_be_visible()

    shots = os.environ.get("POLISH_SHOTS_DIR", str(screenshots.folder))
    os.makedirs(shots, exist_ok=True)
    page.screenshot(path=f"{shots}/review-nothing-{width}.png", full_page=True)
    accessibility.assert_clean()


@pytest.mark.parametrize(("width", "height"), [(1366, 900), (390, 844)])
def test_a_file_without_roles_takes_the_role_chosen_under_the_role_column(
    browser_page, account, partner_role, customer_role, screenshots, accessibility, width, height
):
    from playwright.sync_api import expect

    from tests.factories import ContactFactory

    page = browser_page
    technician = StaffFactory(kind=UserKind.TECHNICIAN, name="Theo Tech", email="theo@mssp.example")
    contacts = [ContactFactory(portal_account=account, name=f"Cleo {n}") for n in range(2)]
    console_sign_in(page, technician, PASSWORD)
    page.set_viewport_size({"width": width, "height": height})
    page.goto(reverse("import-new", args=[account.slug]))
    rows = "".join(f"{contact.contact_id}\n" for contact in contacts)
    page.set_input_files(
        "input[type=file]",
        {"name": "no-roles.csv", "mimeType": "text/csv", "buffer": f"ContactId\n{rows}".encode()},
    )
    page.get_by_role("button", name="Upload and map columns").click()

    page.get_by_role("button", name="Check the rows").click()  # no role column, none chosen
    expect(page.get_by_role("alert")).to_contain_text("No Role column")
    expect(page.get_by_role("alert")).to_contain_text("choose the role for rows without one")
    accessibility.check(page, "map step asking for a role")
    choice = page.get_by_label("Role for rows without one")
    expect(choice).to_have_accessible_description(re.compile("The role decides the user type"))
    choice.select_option(label="Customer User")
    page.get_by_role("button", name="Check the rows").click()

    review = page.locator("#review")
    expect(page.locator("#default-role")).to_contain_text("Rows without a role get Customer User")
    expect(review).to_contain_text("2 will be created")
    expect(review).to_contain_text("Customer licenses: 2 needed")
    screenshots.take(page, f"review-with-a-role-for-every-row-{width}")
    accessibility.check(page, "review with a role for every row")
    page.get_by_role("button", name="Start import (2 users)").click()
    expect(page.get_by_text("2 created")).to_be_visible()
    accessibility.assert_clean()
