"""Markup every page must get right for assistive technology: each aria-describedby,
aria-labelledby and label[for] points at an element that exists on the page, and no id is used
twice. The pages are walked as the people who see them."""

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from accounts.user_actions import ACTIONS
from tests.factories import ContactFactory, PortalUserFactory


class Ids(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.references = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.append(attrs["id"])
        for name in ("aria-describedby", "aria-labelledby", "aria-controls"):
            for target in (attrs.get(name) or "").split():
                self.references.append((tag, name, target))
        if tag == "label" and attrs.get("for"):
            self.references.append((tag, "for", attrs["for"]))


def problems(html):
    parser = Ids()
    parser.feed(html)
    known = set(parser.ids)
    dangling = [
        f"<{tag} {name}={target!r}>"
        for tag, name, target in parser.references
        if target not in known
    ]
    twice = sorted({i for i in parser.ids if parser.ids.count(i) > 1})
    return dangling + [f'id="{i}" twice' for i in twice]


@pytest.fixture
def world(account, partner_role, technician):
    ada = PortalUserFactory(portal_account=account, role=partner_role, name="Ada Larsen")
    ContactFactory(portal_account=account, name="No User Yet")
    return ada


def console_pages(account, ada):
    slug = account.slug
    pages = [
        reverse("portal-accounts"),
        reverse("portal-account-create"),
        reverse("dashboard", args=[slug]),
        reverse("portal-account-settings", args=[slug]),
        reverse("roles", args=[slug]),
        reverse("user-add", args=[slug]),
        reverse("user", args=[slug, ada.pk]),
        reverse("user-links", args=[slug, ada.pk]),
        reverse("contacts", args=[slug]),
        reverse("contact", args=[slug, ada.contact.pk]),
        reverse("orphaned-users", args=[slug]),
        reverse("import-list", args=[slug]),
        reverse("import-new", args=[slug]),
        reverse("audit-log", args=[slug]),
        reverse("audit-log-global"),
        reverse("api-tokens", args=[slug]),
        reverse("my-sessions"),
        reverse("two-factor"),
        reverse("time-zone"),
        reverse("access-policies", args=[slug]),
        reverse("inactivity-preview", args=[slug]),
        reverse("sender-identity", args=[slug]),
        reverse("custom-emails", args=[slug]),
        reverse("webhook-endpoints", args=[slug]),
        reverse("system"),
    ]
    pages += [reverse("users", args=[slug]) + f"?tab={tab}" for tab in ("enabled", "disabled")]
    pages += [reverse("users", args=[slug]) + "?tab=unconfirmed"]
    pages += [reverse("user-action", args=[slug, ada.pk, name]) for name in ACTIONS]
    return pages


def test_console_pages_reference_only_elements_they_have(admin_client, account, world):
    found = {}
    for url in console_pages(account, world):
        response = admin_client.get(url)
        assert response.status_code in (200, 302), url
        wrong = problems(response.content.decode()) if response.status_code == 200 else []
        if wrong:
            found[url] = wrong
    assert found == {}, found


@pytest.mark.parametrize(
    "url",
    ["/sign-in/", "/p/acme/login/", "/p/acme/forgot-password/", "/p/acme/login/code/"],
)
def test_sign_in_pages_reference_only_elements_they_have(client, account, url):
    assert problems(client.get(url).content.decode()) == []


def test_import_wizard_pages_reference_only_elements_they_have(
    admin_client, account, world, settings, tmp_path
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from imports.models import ImportJob

    settings.MEDIA_ROOT = tmp_path / "media"
    text = f"ContactId,Role\n{world.contact.contact_id},\n"
    file = SimpleUploadedFile("users.csv", text.encode(), content_type="text/csv")
    admin_client.post(reverse("import-new", args=[account.slug]), {"file": file})
    job = ImportJob.objects.get()
    pages = {
        "map": reverse("import-map", args=[account.slug, job.pk]),
        "review": reverse("import-review", args=[account.slug, job.pk]),
        "detail": reverse("import-detail", args=[account.slug, job.pk]),
    }
    found = {}
    for name, url in pages.items():
        if name == "review":  # mapped first, with a role for the empty cell
            role = account.roles.get(user_type="partner")
            admin_client.post(
                pages["map"], {"contact_id": "0", "role": "1", "default_role": str(role.pk)}
            )
        response = admin_client.get(url)
        assert response.status_code == 200, url
        wrong = problems(response.content.decode())
        if wrong:
            found[name] = wrong
    assert found == {}, found


def test_a_form_without_its_csrf_token_gets_a_page_that_says_what_to_do(db):
    """Django's own CSRF failure page styles itself inline, which the CSP blocks: ours uses the
    site's stylesheet and says what to do (a stale form, or an operator's proxy setting)."""
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post("/sign-in/", {"username": "a@b.example"})

    assert response.status_code == 403
    page = response.content.decode()
    assert "The form could not be sent" in page
    assert "Go back, reload the page, and try again." in page
    assert "<style" not in page
    assert "/static/css/app" in page
