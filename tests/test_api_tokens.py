"""API tokens: created and revoked by MSSP admins in the console, shown once, stored hashed, and
reaching their own portal account only."""

import json

import pytest
from django.http import JsonResponse
from django.test import RequestFactory
from django.urls import reverse

from accounts import audit
from accounts.models import AuditEvent
from api import api_tokens
from api.authentication import token_api_view
from api.models import ApiToken


@pytest.fixture
def tokens_url(account):
    return reverse("api-tokens", args=[account.slug])


def _whoami(request, account):
    """A view behind the token check: says which account it got and who audit events name."""
    event = audit.record("probe", by=None, portal_account=account)
    return JsonResponse({"account": account.slug, "actor": event.actor_label})


def _call(slug, authorization=None):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    request = RequestFactory().get(f"/api/v1/accounts/{slug}/probe", **headers)
    response = token_api_view(_whoami)(request, slug=slug)
    response.body = json.loads(response.content)
    return response


def test_mssp_admin_creates_a_token_and_sees_its_secret_once(admin_client, account, tokens_url):
    response = admin_client.post(tokens_url, {"name": "Salesforce sync", "scope": "sync"})

    assert response.status_code == 200
    token = ApiToken.objects.get(portal_account=account)
    secret = response.context["secret"]
    assert secret.startswith("pat_")
    assert secret in response.content.decode()
    assert token.token_hash != secret
    assert secret not in token.token_hash
    assert ApiToken.find(secret) == token
    assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    again = admin_client.get(tokens_url).content.decode()
    assert "Salesforce sync" in again
    assert secret not in again
    assert token.hint in again
    assert AuditEvent.objects.filter(action="create_api_token", detail="Salesforce sync").exists()


@pytest.mark.parametrize("name", ["", "   "])
def test_a_token_needs_a_name(admin_client, account, tokens_url, name):
    response = admin_client.post(tokens_url, {"name": name})

    assert response.status_code == 400
    assert "Name the token" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_two_live_tokens_of_an_account_cannot_share_a_name(admin_client, account, tokens_url):
    api_tokens.create_token(account, "HubSpot card", by=None)

    response = admin_client.post(tokens_url, {"name": "HubSpot card"})

    assert response.status_code == 400
    assert "already exists" in response.content.decode()
    assert ApiToken.objects.count() == 1


def test_revoking_a_token_stops_it_at_once(admin_client, account, mssp_admin):
    token, secret = api_tokens.create_token(account, "Workflow", by=mssp_admin)
    assert _call(account.slug, f"Bearer {secret}").status_code == 200

    response = admin_client.post(reverse("api-token-revoke", args=[account.slug, token.pk]))

    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_by == mssp_admin
    assert token.revoked_at is not None
    assert _call(account.slug, f"Bearer {secret}").status_code == 401
    again = admin_client.post(reverse("api-token-revoke", args=[account.slug, token.pk]))
    assert again.status_code == 302  # "already revoked", nothing changes
    assert AuditEvent.objects.filter(action="revoke_api_token").count() == 1


def test_only_mssp_admins_manage_tokens(technician_client, account_admin_client, tokens_url):
    for client in (technician_client, account_admin_client):
        assert client.get(tokens_url).status_code == 403
        assert client.post(tokens_url, {"name": "Sneaky"}).status_code == 403
    assert not ApiToken.objects.exists()


def test_another_accounts_token_cannot_be_revoked_through_this_account(
    admin_client, account, other_account
):
    token, _ = api_tokens.create_token(other_account, "Theirs", by=None)

    response = admin_client.post(reverse("api-token-revoke", args=[account.slug, token.pk]))

    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_a_token_reaches_its_account_and_names_itself_in_the_audit_log(account):
    token, secret = api_tokens.create_token(account, "Salesforce sync", by=None)

    response = _call(account.slug, f"Bearer {secret}")

    assert response.status_code == 200
    assert response.body == {"account": account.slug, "actor": "API token 'Salesforce sync'"}
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_a_token_is_a_404_on_another_accounts_url(account, other_account):
    _, secret = api_tokens.create_token(other_account, "Theirs", by=None)

    response = _call(account.slug, f"Bearer {secret}")

    assert response.status_code == 404
    assert response.body == {"error": "Not found."}
    assert not AuditEvent.objects.filter(action="probe").exists()


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer pat_not-a-real-token", "Basic dXNlcjpwYXNz", "pat_no-scheme"],
)
def test_missing_or_unknown_tokens_are_401(account, authorization):
    api_tokens.create_token(account, "Real one", by=None)

    response = _call(account.slug, authorization)

    assert response.status_code == 401
    assert "API token" in response.body["error"]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_an_unknown_api_url_is_a_json_404(client):
    response = client.get("/api/v1/no-such-thing/")

    assert response.status_code == 404
    assert "openapi.json" in response.json()["error"]


def test_an_unknown_console_url_is_still_a_page(admin_client):
    response = admin_client.get("/accounts/no-such-account/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
