"""The time zone page offers the browser's own zone, and the console then shows times in it:
relative in lists, the exact time in the title on hover."""

import os
import re

import pytest
from django.urls import reverse

from accounts import audit
from accounts.models import UserKind
from tests.factories import PASSWORD, PortalUserFactory, StaffFactory
from tests.signing_in import console_sign_in

pytest_plugins = ["tests.browser"]
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]


@pytest.mark.parametrize(("width", "height"), [(1366, 800), (390, 844)])
def test_the_browsers_zone_is_offered_and_used(
    playwright_browser, live_server, account, partner_role, screenshots, width, height
):
    from playwright.sync_api import expect

    context = playwright_browser.new_context(
        base_url=live_server.url,
        viewport={"width": width, "height": height},
        timezone_id="Asia/Tokyo",
    )
    page = context.new_page()
    page.set_default_timeout(5_000)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        theo = StaffFactory(kind=UserKind.TECHNICIAN, name="Theo Tech", email="theo@mssp.example")
        grace = PortalUserFactory(portal_account=account, role=partner_role, name="Grace Hopper")
        audit.record("disable", by=theo, subject=grace)
        console_sign_in(page, theo, PASSWORD)
        page.goto(reverse("time-zone"))
        page.get_by_role("button", name="Use this browser's time zone (Asia/Tokyo)").click()
        expect(page.get_by_label("Time zone")).to_have_value("Asia/Tokyo")
        page.get_by_role("button", name="Save").click()
        expect(page.locator("#toasts .messages")).to_contain_text("Asia/Tokyo")
        shots = os.environ.get("POLISH_SHOTS_DIR", str(screenshots.folder))
        os.makedirs(shots, exist_ok=True)
        page.screenshot(path=f"{shots}/time-zone-{width}.png", full_page=True)

        page.goto(reverse("audit-log", args=[account.slug]))
        when = page.locator("td.audit-when time").first
        expect(when).to_have_text("just now")
        expect(when).to_have_attribute("title", re.compile(r" JST$"))
        page.screenshot(path=f"{shots}/audit-log-{width}.png", full_page=True)
    finally:
        context.close()
    assert not errors, errors
