"""API tokens have a scope (what they may call), an optional expiry, and remember where they were
last used from: "sync" calls the contact sync only, "read" looks portal users up only, "full"
calls everything (magic links and the account admin's user included). A token refused for its
scope gets a 403 naming the scope needed, and changes nothing."""

import datetime
import json

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent, LoginToken, User, UserState
from api import api_tokens
from api.models import ApiToken, token_hash
from contacts.models import Contact
from tests.conftest import api_client_for
from tests.factories import ContactFactory, PortalUserFactory

CID = "003AAAAAAAAAAAAAAA1"
SYNC, READ, FULL = "sync", "read", "full"


def token_for(account, scope, *, by=None, expires_at=None):
    token, secret = api_tokens.create_token(
        account, f"{scope} token", by=by, scope=scope, expires_at=expires_at
    )
    token.secret = secret
    return token


def client_with(account, scope):
    return api_client_for(token_for(account, scope).secret)


def portal_user_url(contact, action=""):
    name = f"api-portal-user-{action}" if action else "api-portal-user"
    return reverse(name, kwargs={"slug": "acme", "contact_ref": contact.contact_id})


def sync_url(operation):
    return reverse(f"api-sync-{operation}", args=["acme"])


def as_json(body):
    return json.dumps(body)


def world():
    """Everything a refused request must leave as it was."""
    return (
        sorted(Contact.objects.values_list("pk", "name", "deleted_at")),
        sorted(User.objects.values_list("pk", "state", "role_id", "is_account_admin")),
        AuditEvent.objects.exclude(action="create_api_token").count(),
        LoginToken.objects.count(),
    )


@pytest.fixture
def pia(account, partner_role):
    return PortalUserFactory(
        portal_account=account,
        role=partner_role,
        state=UserState.ENABLED,
        name="Pia Portal",
        email="pia@acme.example",
    )


@pytest.fixture
def carl(account):
    return ContactFactory(portal_account=account, name="Carl Contact", email="carl@acme.example")


@pytest.fixture
def calls(pia, carl):
    """One request per kind of endpoint, in an order where none spoils the next: (label, the
    scope it needs, how to make it). A "full" token may make them all."""

    def post(url, body=None):
        return lambda c: c.post(url, as_json(body or {}), content_type="application/json")

    return [
        ("portal-user status", READ, lambda c: c.get(portal_user_url(pia.contact))),
        ("magic link", FULL, post(portal_user_url(pia.contact, "magic-link"))),
        ("disable", FULL, post(portal_user_url(pia.contact, "disable"))),
        (
            "enable",
            FULL,
            post(
                portal_user_url(carl, "enable"), {"role": "Partner User", "send_invitation": False}
            ),
        ),
        (
            "sync upsert",
            SYNC,
            post(sync_url("upsert"), {"contacts": [{"contact_id": CID, "name": "New Contact"}]}),
        ),
        ("sync delete", SYNC, post(sync_url("delete"), {"contacts": [{"contact_id": CID}]})),
    ]


@pytest.mark.parametrize("scope", [SYNC, READ, FULL])
def test_each_scope_reaches_its_endpoints_and_no_others(account, calls, scope):
    client = client_with(account, scope)
    for label, needed, call in calls:
        before = world()
        response = call(client)
        if scope in (needed, FULL):
            assert response.status_code in (200, 201), (label, response.json())
        else:
            assert response.status_code == 403, label
            error = response.json()["error"]
            assert f"needs an API token with the '{needed}' scope" in error, (label, error)
            assert f"This token has the '{scope}' scope" in error
            assert world() == before, label


def test_a_full_token_acts_on_the_account_admins_user(account, account_admin):
    for scope in (SYNC, READ):
        response = client_with(account, scope).post(
            portal_user_url(account_admin.contact, "disable"), content_type="application/json"
        )
        assert response.status_code == 403
    account_admin.refresh_from_db()
    assert account_admin.state == UserState.ENABLED

    response = client_with(account, FULL).post(
        portal_user_url(account_admin.contact, "disable"), content_type="application/json"
    )

    assert response.status_code == 200
    account_admin.refresh_from_db()
    assert account_admin.state == UserState.DISABLED


def test_a_read_token_is_offered_no_actions(account, pia):
    read = client_with(account, READ).get(portal_user_url(pia.contact)).json()
    full = client_with(account, FULL).get(portal_user_url(pia.contact)).json()

    assert read["portal_user"]["state"] == "enabled"
    assert read["allowed_actions"] == []
    assert "magic-link" in full["allowed_actions"]
    assert "disable" in full["allowed_actions"]


# --- Expiry ---


def test_an_expired_token_is_refused_like_a_revoked_one(account, pia):
    token = token_for(account, FULL, expires_at=timezone.now() + datetime.timedelta(days=1))
    client = api_client_for(token.secret)
    assert client.get(portal_user_url(pia.contact)).status_code == 200

    # The day comes.
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now())
    before = world()
    status = client.get(portal_user_url(pia.contact))
    disable = client.post(portal_user_url(pia.contact, "disable"), content_type="application/json")

    for response in (status, disable):
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == 'Bearer realm="portal-admin"'
        assert "expired" in response.json()["error"]
    assert world() == before


# --- Last use ---


def test_the_last_use_records_when_and_from_where(account, admin_client, pia, settings):
    settings.TRUSTED_PROXY_HOPS = 0
    token = token_for(account, READ)
    client = api_client_for(token.secret)

    client.get(portal_user_url(pia.contact), REMOTE_ADDR="203.0.113.7")

    token.refresh_from_db()
    assert token.last_used_at is not None
    assert token.last_used_ip == "203.0.113.7"

    # A new address shows at once, even within the minute "last used" is precise to.
    client.get(portal_user_url(pia.contact), REMOTE_ADDR="198.51.100.23")
    token.refresh_from_db()
    assert token.last_used_ip == "198.51.100.23"
    page = admin_client.get(reverse("api-tokens", args=[account.slug])).content.decode()
    assert "from 198.51.100.23" in page


def test_a_request_refused_for_its_scope_still_counts_as_a_use(account, pia):
    token = token_for(account, SYNC)

    response = api_client_for(token.secret).get(
        portal_user_url(pia.contact), REMOTE_ADDR="203.0.113.9"
    )

    assert response.status_code == 403
    token.refresh_from_db()
    assert token.last_used_ip == "203.0.113.9"


# --- The console's API tokens page ---


@pytest.fixture
def tokens_url(account):
    return reverse("api-tokens", args=[account.slug])


def test_an_admin_creates_a_token_with_a_scope_and_an_expiry(
    admin_client, account, mssp_admin, tokens_url
):
    expires_on = timezone.localdate() + datetime.timedelta(days=90)

    response = admin_client.post(
        tokens_url,
        {"name": "HubSpot card", "scope": READ, "expires_on": expires_on.isoformat()},
    )

    assert response.status_code == 200
    token = ApiToken.objects.get(portal_account=account)
    assert token.scope == READ
    assert timezone.localtime(token.expires_at).date() == expires_on
    assert timezone.localtime(token.expires_at).time() == datetime.time(0, 0)
    assert token_hash(response.context["secret"]) == token.token_hash
    event = AuditEvent.objects.get(action="create_api_token")
    assert event.actor == mssp_admin
    assert event.detail == "HubSpot card"
    assert event.after == {"scope": READ, "expires_at": token.expires_at.isoformat()}
    page = admin_client.get(tokens_url).content.decode()
    assert "Read portal users" in page
    assert expires_on.strftime("%b %Y") in page


def test_a_token_without_an_expiry_never_expires(admin_client, account, tokens_url):
    response = admin_client.post(tokens_url, {"name": "Salesforce sync", "scope": SYNC})

    assert response.status_code == 200
    token = ApiToken.objects.get(portal_account=account)
    assert (token.scope, token.expires_at) == (SYNC, None)
    assert AuditEvent.objects.get(action="create_api_token").after["expires_at"] == "never"


def _in_days(days):
    return (timezone.localdate() + datetime.timedelta(days=days)).isoformat()


@pytest.mark.parametrize(
    ("expires_on", "message"),
    [
        (_in_days(0), "Pick an expiry date after today"),
        (_in_days(-3), "Pick an expiry date after today"),
        (_in_days(3 * 365), "at most 2 years ahead"),
        ("31/12/2030", "Enter the expiry date as YYYY-MM-DD"),
        ("never", "Enter the expiry date as YYYY-MM-DD"),
    ],
    ids=["today", "past", "too-far", "other-format", "word"],
)
def test_a_bad_expiry_is_refused_with_a_plain_message(
    admin_client, account, tokens_url, expires_on, message
):
    response = admin_client.post(
        tokens_url, {"name": "Workflow", "scope": FULL, "expires_on": expires_on}
    )

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ApiToken.objects.exists()
    assert not AuditEvent.objects.exists()


def test_two_years_ahead_is_the_latest_expiry(admin_client, account, tokens_url):
    latest = api_tokens.latest_expiry_date()
    too_far = (latest + datetime.timedelta(days=1)).isoformat()

    assert (
        admin_client.post(
            tokens_url, {"name": "Too far", "scope": FULL, "expires_on": too_far}
        ).status_code
        == 400
    )
    response = admin_client.post(
        tokens_url, {"name": "Just right", "scope": FULL, "expires_on": latest.isoformat()}
    )

    assert response.status_code == 200
    assert ApiToken.objects.get().name == "Just right"


@pytest.mark.parametrize("scope", ["", "admin", "FULL"])
def test_a_token_needs_a_known_scope(admin_client, account, tokens_url, scope):
    response = admin_client.post(tokens_url, {"name": "Workflow", "scope": scope})

    assert response.status_code == 400
    assert "Pick what the token may do" in response.content.decode()
    assert not ApiToken.objects.exists()


# --- Tokens from before scopes ---


@pytest.mark.django_db(transaction=True)
def test_tokens_from_before_scopes_keep_full_access(account):
    before = [("api", "0002_live_token_names_unique")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old_token = executor.loader.project_state(before).apps.get_model("api", "ApiToken")
    old_token.objects.create(
        portal_account_id=account.pk, name="Old connector", token_hash="x" * 64, hint="pat_old"
    )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    token = ApiToken.objects.get(name="Old connector")
    assert (token.scope, token.expires_at, token.last_used_ip) == (FULL, None, None)
