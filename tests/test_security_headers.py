"""Security headers on every page: a Content-Security-Policy that lets only the site's own files
run (so pages carry no inline script, style or event handler), a Permissions-Policy, and
Cache-Control: no-store on whatever is rendered for a signed-in person or downloaded."""

import json
import re
from pathlib import Path

import pytest
from django.urls import reverse

from tests.factories import ContactFactory, PortalUserFactory

HTMX = {"HX-Request": "true"}
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def policy(response):
    """The CSP header as {directive: [sources]}."""
    directives = (part.split() for part in response["Content-Security-Policy"].split(";"))
    return {name: sources for name, *sources in directives}


def cache_directives(response):
    return {part.strip() for part in response.get("Cache-Control", "").split(",") if part.strip()}


@pytest.fixture
def contact(account):
    return ContactFactory(portal_account=account, name="Carl Contact")


@pytest.fixture
def portal_user(account, partner_role):
    return PortalUserFactory(portal_account=account, role=partner_role, name="Pia Portal")


@pytest.fixture
def portal_client(client, portal_user):
    client.force_login(portal_user, backend="accounts.backends.PortalBackend")
    return client


# --- Content-Security-Policy ---


def test_console_pages_allow_only_their_own_scripts_styles_and_forms(admin_client, account):
    response = admin_client.get(reverse("users", args=[account.slug]))

    assert policy(response) == {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(lambda: reverse("login"), id="console sign-in"),
        pytest.param(lambda: reverse("portal-login", args=["acme"]), id="portal sign-in"),
        pytest.param(lambda: "/p/acme/magic/not-a-live-secret/", id="dead portal link"),
    ],
)
def test_pages_for_strangers_carry_the_policy_too(client, account, path):
    response = client.get(path())

    csp = policy(response)
    assert csp["script-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]


def test_htmx_partials_carry_the_policy(admin_client, account):
    response = admin_client.get(reverse("users", args=[account.slug]), {"tab": "disabled"})
    partial = admin_client.get(
        reverse("users", args=[account.slug]), {"tab": "disabled"}, headers=HTMX
    )

    assert "<html" not in partial.content.decode()
    assert policy(partial) == policy(response)


def test_htmx_may_not_evaluate_code_or_inject_styles(admin_client, account):
    page = admin_client.get(reverse("dashboard", args=[account.slug])).content.decode()

    config = re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", page).group(1)
    assert json.loads(config) | {"responseHandling": None} == {
        "allowEval": False,
        "allowScriptTags": False,
        "includeIndicatorStyles": False,
        # htmx's settle copies these attributes with setAttribute, which the CSP blocks for style.
        "attributesToSettle": ["class", "width", "height"],
        "responseHandling": None,
    }


INLINE_CODE = {
    "inline <script>": re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.IGNORECASE),
    "<style> element": re.compile(r"<style\b", re.IGNORECASE),
    "style attribute": re.compile(r"\sstyle\s*=", re.IGNORECASE),
    "event-handler attribute": re.compile(r"\son[a-z]+\s*=", re.IGNORECASE),
    "javascript: URL": re.compile(r"javascript:", re.IGNORECASE),
    "hx-on (needs eval)": re.compile(r"\shx-on", re.IGNORECASE),
}


def inline_code_in(html):
    return sorted(name for name, pattern in INLINE_CODE.items() if pattern.search(html))


@pytest.fixture
def console_pages(admin_client, account, contact, portal_user):
    """Pages that once carried inline code: the dashboard's copy script and seat bars, the
    accounts list's seat bars, a secret's select-on-focus field."""
    links = reverse("user-links", args=[account.slug, portal_user.pk])
    return {
        "dashboard": admin_client.get(reverse("dashboard", args=[account.slug])),
        "portal accounts": admin_client.get(reverse("portal-accounts")),
        "users": admin_client.get(reverse("users", args=[account.slug])),
        "contact": admin_client.get(reverse("contact", args=[account.slug, contact.pk])),
        "magic link created": admin_client.post(links, {"section": ""}),
    }


def test_rendered_console_pages_hold_no_code_the_policy_would_block(console_pages):
    for name, response in console_pages.items():
        assert response.status_code == 200, name
        assert inline_code_in(response.content.decode()) == [], name


def test_no_page_template_holds_code_the_policy_would_block():
    """Every template but the emails' (mail clients ignore stylesheets; no CSP applies there)."""
    offending = {
        str(path.relative_to(TEMPLATES)): found
        for path in sorted(TEMPLATES.rglob("*.html"))
        if path.relative_to(TEMPLATES).parts[0] != "emails"
        if (found := inline_code_in(path.read_text()))
    }
    assert offending == {}


# --- Permissions-Policy ---


@pytest.mark.parametrize("signed_in", [True, False])
def test_every_page_denies_camera_microphone_location_payment_and_usb(
    admin_client, client, account, signed_in
):
    response = (admin_client if signed_in else client).get(reverse("login"))

    denied = {part.strip() for part in response["Permissions-Policy"].split(",")}
    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert f"{feature}=()" in denied


# --- Cache-Control ---


def test_console_pages_are_never_stored(admin_client, account, contact):
    for path in (
        reverse("portal-accounts"),
        reverse("dashboard", args=[account.slug]),
        reverse("users", args=[account.slug]),
        reverse("contact", args=[account.slug, contact.pk]),
        reverse("audit-log", args=[account.slug]),
    ):
        response = admin_client.get(path)
        assert response.status_code == 200, path
        assert "no-store" in cache_directives(response), path


def test_an_account_admins_pages_are_never_stored(account_admin_client, account):
    response = account_admin_client.get(reverse("users", args=[account.slug]))

    assert "no-store" in cache_directives(response)


def test_htmx_partials_are_never_stored(admin_client, account):
    response = admin_client.get(
        reverse("users", args=[account.slug]), {"tab": "disabled"}, headers=HTMX
    )

    assert response.status_code == 200
    assert "no-store" in cache_directives(response)


def test_the_users_csv_export_is_never_stored(admin_client, account, portal_user):
    response = admin_client.get(reverse("users-export", args=[account.slug]))

    assert response["Content-Disposition"].startswith("attachment")
    assert "no-store" in cache_directives(response)
    assert portal_user.email in b"".join(response.streaming_content).decode()


def test_an_import_template_download_is_never_stored(admin_client, account):
    response = admin_client.get(reverse("import-template", args=[account.slug]))

    assert response["Content-Disposition"].startswith("attachment")
    assert "no-store" in cache_directives(response)


def test_portal_pages_of_a_signed_in_portal_user_are_never_stored(portal_client, account):
    response = portal_client.get(reverse("portal-home", args=[account.slug]))

    assert response.status_code == 200
    assert "no-store" in cache_directives(response)


def test_a_views_own_cache_control_is_kept(technician_client, account, portal_user):
    """never_cache says more than no-store (max-age=0, private); it is not overwritten."""
    links = reverse("user-links", args=[account.slug, portal_user.pk])
    response = technician_client.get(links)

    assert {"no-store", "private", "max-age=0"} <= cache_directives(response)
