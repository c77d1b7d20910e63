"""Input nobody should send, sent anyway: the answer is a 4xx with a plain message (JSON for the
API), never a 500, and nothing changes."""

import pytest
from django.urls import reverse

from accounts.models import UserState
from api.models import ApiToken
from contacts.models import Contact
from tests.factories import ContactFactory, PortalUserFactory

DEEP = b'{"contacts": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
HUGE_NUMBER = b'{"contacts": [{"name": ' + b"9" * 5000 + b"}]}"


@pytest.fixture
def contact(account):
    return ContactFactory(portal_account=account, name="Jo Smith", email="jo@acme.example")


def _sync_url(account, operation="upsert"):
    return f"/api/v1/accounts/{account.slug}/contacts/{operation}/"


def _enable_url(account, contact):
    return f"/api/v1/accounts/{account.slug}/contacts/{contact.contact_id}/portal-user/enable/"


@pytest.mark.parametrize("body", [DEEP, HUGE_NUMBER], ids=["nested too deep", "huge number"])
def test_json_the_parser_cannot_take_is_a_400(api_client, account, contact, body):
    for url in (_sync_url(account), _enable_url(account, contact)):
        response = api_client.post(url, body, content_type="application/json")

        assert response.status_code == 400, url
        assert "not valid JSON" in response.json()["error"]
    assert Contact.objects.count() == 1


def test_a_body_over_the_size_limit_is_a_json_400(api_client, account, contact, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = api_client.post(
        _enable_url(account, contact), {"role": "x" * 2000}, content_type="application/json"
    )

    assert response.status_code == 400
    assert "The body is too large: at most 1000 bytes." in response.json()["error"]


def test_one_huge_item_in_a_sync_is_told_the_size_not_the_count(api_client, account, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
    item = {"contact_id": "003HUGE0000000000001", "name": "x" * 3_000_000}
    response = api_client.post(
        reverse("api-sync-upsert", args=[account.slug]),
        {"contacts": [item]},
        content_type="application/json",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith("The body is too large: at most 2.5 MB.")
    assert "or shorter values" in error


def test_sync_refuses_keys_it_does_not_know_instead_of_ignoring_them(api_client, account):
    body = {"contacts": [{"contact_id": "003AAAAAAAAAAAAAAA1", "name": "Jo"}], "dry_run": True}

    response = api_client.post(_sync_url(account), body, content_type="application/json")

    assert response.status_code == 400
    assert "dry_run" in response.json()["error"]
    assert not Contact.objects.exists()


@pytest.mark.parametrize("ref", ["003AAAAAAAAAAAAAAA\x00", "003AAAAAAAAAAAAAA-1", "ünïcödé"])
def test_a_contact_reference_that_is_no_id_is_a_404(api_client, account, ref):
    url = reverse("api-portal-user", args=[account.slug, ref])

    response = api_client.get(url)

    assert response.status_code == 404
    assert response.json() == {"error": "Not found."}


@pytest.mark.parametrize("page", ["users", "contacts"])
def test_control_characters_in_a_search_are_dropped(admin_client, account, contact, page):
    response = admin_client.get(reverse(page, args=[account.slug]), {"q": "Jo\x00 Smi\x07th"})

    assert response.status_code == 200


def test_orphan_search_and_odd_digits_in_the_chosen_contact(admin_client, account, partner_role):
    orphan = PortalUserFactory(portal_account=account, role=partner_role, state=UserState.ENABLED)
    Contact.objects.filter(pk=orphan.contact_id).update(deleted_at="2026-01-01T00:00:00Z")
    url = reverse("orphan-associate", args=[account.slug, orphan.pk])

    assert admin_client.get(url, {"q": "a\x00b"}).status_code == 200
    assert admin_client.get(url, {"contact": "²"}).status_code == 404


def test_an_api_token_name_over_100_characters_is_refused(admin_client, account):
    response = admin_client.post(reverse("api-tokens", args=[account.slug]), {"name": "x" * 150})

    assert response.status_code == 400
    assert "100 characters" in response.content.decode()
    assert not ApiToken.objects.exists()
