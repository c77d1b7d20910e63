"""The portal-user API as a CRM card or workflow uses it: look up a contact's portal access, act
on it, and get the same rules, messages, audit events and emails as the contact page's card."""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent, EmailKind, OutboxEmail, User, UserState
from api import api_tokens
from contacts.salesforce_ids import to_18
from tests.conftest import api_client_for
from tests.factories import ContactFactory, PortalUserFactory, RoleFactory

TOKEN_LABEL = "API token 'CRM connector'"
SALESFORCE_15 = "0035g00000AbCdE"


def url(contact, action="", slug="acme"):
    ref = contact if isinstance(contact, str) else contact.contact_id
    name = f"api-portal-user-{action}" if action else "api-portal-user"
    return reverse(name, kwargs={"slug": slug, "contact_ref": ref})


def post(client, contact, action, body=None, **kwargs):
    return client.post(url(contact, action, **kwargs), body, content_type="application/json")


@pytest.fixture
def carl(account):
    """A live CRM contact without a portal user."""
    return ContactFactory(
        portal_account=account,
        name="Carl Contact",
        email="carl@acme.example",
        salesforce_id=to_18(SALESFORCE_15),
    )


def user_in(account, role, state, name="Pia Portal", email="pia@acme.example", **extra):
    return PortalUserFactory(
        portal_account=account, role=role, state=state, name=name, email=email, **extra
    )


@pytest.fixture
def pia(account, partner_role):
    return user_in(account, partner_role, UserState.ENABLED)


def unchanged():
    """What a refused request must leave as it was."""
    return (
        sorted(User.objects.values_list("pk", "state", "role_id")),
        AuditEvent.objects.exclude(action="create_api_token").count(),
        OutboxEmail.objects.count(),
    )


# --- Looking up a contact ---


def test_a_contact_without_a_user_can_be_enabled_with_an_active_role(
    api_client, carl, partner_role, customer_role, inactive_role
):
    response = api_client.get(url(carl))
    assert response.status_code == 200
    assert response.json() == {
        "contact": {
            "contact_id": carl.contact_id,
            "salesforce_id": to_18(SALESFORCE_15),
            "name": "Carl Contact",
            "email": "carl@acme.example",
            "crm_account_name": "Acme Corp",
            "deleted": False,
        },
        "portal_user": None,
        "allowed_actions": ["enable"],
        "roles": ["Customer User", "Partner User"],
    }


@pytest.mark.parametrize("ref", [SALESFORCE_15, to_18(SALESFORCE_15)])
def test_a_contact_is_found_by_its_salesforce_id_too(api_client, carl, ref):
    response = api_client.get(url(ref))
    assert response.json()["contact"]["contact_id"] == carl.contact_id


@pytest.mark.parametrize("ref", ["003" + "x" * 16, "0035g00000ZZZZZ", "nonsense"])
def test_an_unknown_contact_is_404(api_client, carl, ref):
    response = api_client.get(url(ref))
    assert response.status_code == 404
    assert response.json() == {"error": "Not found."}


def test_the_status_describes_the_user(api_client, pia):
    user = api_client.get(url(pia.contact)).json()["portal_user"]
    assert user == {
        "id": pia.pk,
        "state": "enabled",
        "user_type": "partner",
        "role": "Partner User",
        "email": "pia@acme.example",
        "is_account_admin": False,
        "invited_at": pia.invited_at.isoformat(),
        "activated_at": pia.activated_at.isoformat(),
        "last_login": None,
        "access_ends_on": None,
    }


ENABLED_ACTIONS = ["reset-password", "send-login-email", "change-role", "disable", "magic-link"]
UNCONFIRMED_ADMIN = ["reinvite", "change-role", "disable"]


@pytest.mark.parametrize(
    ("state", "extra", "contact_deleted", "expected"),
    [
        (UserState.ENABLED, {}, False, ENABLED_ACTIONS),
        (UserState.UNCONFIRMED, {}, False, ["reinvite", "change-role", "disable", "delete"]),
        (UserState.DISABLED, {}, False, ["reactivate", "delete"]),
        # Whoever's contact is deleted cannot sign in: only taking access away is offered.
        (UserState.ENABLED, {}, True, ["change-role", "disable"]),
        (UserState.DISABLED, {}, True, ["delete"]),
        # The account admin seat is never deleted.
        (UserState.DISABLED, {"is_account_admin": True}, False, ["reactivate"]),
        (UserState.UNCONFIRMED, {"is_account_admin": True}, False, UNCONFIRMED_ADMIN),
    ],
)
def test_the_allowed_actions_follow_the_state(
    api_client, account, partner_role, state, extra, contact_deleted, expected
):
    user = user_in(account, partner_role, state, **extra)
    if contact_deleted:
        user.contact.deleted_at = timezone.now()
        user.contact.save()
    assert api_client.get(url(user.contact)).json()["allowed_actions"] == expected


def test_a_deleted_contact_without_a_user_offers_nothing(api_client, carl):
    carl.deleted_at = timezone.now()
    carl.save()
    body = api_client.get(url(carl)).json()
    assert body["contact"]["deleted"] is True
    assert body["allowed_actions"] == []


# --- Enabling a contact ---


def test_enable_invites_the_contact_as_the_console_does(
    api_client, admin_client, account, carl, partner_role
):
    cleo = ContactFactory(portal_account=account, name="Cleo Console", email="cleo@acme.example")
    response = post(api_client, carl, "enable", {"role": "Partner User"})
    card_url = reverse("contact-portal-user", args=["acme", cleo.pk, "invite"])
    form = {"role": partner_role.pk, "user_type": "partner", "send_invitation": "on"}
    assert admin_client.post(card_url, form).status_code == 302

    assert response.status_code == 201
    body = response.json()
    assert body["portal_user"]["state"] == "unconfirmed"
    assert body["portal_user"]["role"] == "Partner User"
    assert body["allowed_actions"] == ["reinvite", "change-role", "disable", "delete"]
    user, console_user = User.objects.get(contact=carl), User.objects.get(contact=cleo)
    assert (user.user_type, user.email) == ("partner", "carl@acme.example")
    event = AuditEvent.objects.get(action="invite", subject_user=user)
    assert (event.actor, event.actor_label) == (None, TOKEN_LABEL)
    console_event = AuditEvent.objects.get(action="invite", subject_user=console_user)
    same = ["before", "after", "detail", "outcome"]
    assert [getattr(event, f) for f in same] == [getattr(console_event, f) for f in same]
    assert list(OutboxEmail.objects.filter(user=user).values_list("kind", flat=True)) == [
        EmailKind.INVITATION
    ]


def test_enable_as_a_customer_without_an_invitation(api_client, carl, customer_role):
    body = {"role": "Customer User", "user_type": "customer", "send_invitation": False}
    response = post(api_client, carl, "enable", body)
    assert response.status_code == 201
    assert response.json()["portal_user"]["user_type"] == "customer"
    assert not OutboxEmail.objects.exists()
    assert AuditEvent.objects.get(action="invite").detail == "no invitation email"


def test_no_licenses_left_is_409_with_the_lifecycle_message(api_client, account, carl, pia):
    account.partner_licenses = 1
    account.save()
    before = unchanged()
    response = post(api_client, carl, "enable", {"role": "Partner User"})
    assert response.status_code == 409
    assert response.json() == {"error": "No Partner licenses left: 1 of 1 in use."}
    assert unchanged() == before


@pytest.mark.parametrize(
    ("role", "message"),
    [
        (
            "partner user",
            "No role named 'partner user'. Did you mean 'Partner User'? Role names must match "
            "exactly, including case.",
        ),
        ("Nobody", "No role named 'Nobody'. Use one of: 'Partner User'."),
        (
            "Reseller",
            "The role 'Reseller' is inactive. Use an active role ('Partner User'), or make the "
            "role active first.",
        ),
    ],
)
def test_an_unknown_or_inactive_role_is_400(
    api_client, carl, partner_role, inactive_role, role, message
):
    before = unchanged()
    response = post(api_client, carl, "enable", {"role": role})
    assert response.status_code == 400
    assert response.json() == {"error": message, "errors": [{"field": "role", "message": message}]}
    assert unchanged() == before


def test_enabling_a_contact_that_has_a_user_is_409(api_client, pia):
    response = post(api_client, pia.contact, "enable", {"role": "Partner User"})
    assert response.status_code == 409
    assert response.json()["error"] == (
        "User already exists: Pia Portal already has a portal user."
    )


def test_enabling_a_deleted_contact_is_409(api_client, carl, partner_role):
    carl.deleted_at = timezone.now()
    carl.save()
    response = post(api_client, carl, "enable", {"role": "Partner User"})
    assert response.status_code == 409
    assert "Restore it first" in response.json()["error"]
    assert not User.objects.filter(contact=carl).exists()


# --- Acting on a user: the same audit event and email as the contact page's card ---

ENABLED, DISABLED, UNCONFIRMED = UserState.ENABLED, UserState.DISABLED, UserState.UNCONFIRMED
# (API action, card action, start state, end state or None for deleted, email, answer status)
ACTIONS = [
    ("disable", "disable", ENABLED, DISABLED, None, 200),
    ("reactivate", "enable", DISABLED, ENABLED, EmailKind.ACCESS_RESTORED, 200),
    ("reinvite", "reinvite", UNCONFIRMED, UNCONFIRMED, EmailKind.REINVITATION, 200),
    ("delete", "delete", UNCONFIRMED, None, None, 200),
    ("reset-password", "reset-password", ENABLED, ENABLED, EmailKind.PASSWORD_RESET, 200),
    ("change-role", "change-role", ENABLED, ENABLED, None, 200),
    ("send-login-email", "send-login-email", ENABLED, ENABLED, EmailKind.LOGIN_LINK, 202),
]


@pytest.mark.parametrize(("action", "card", "start", "end", "email", "status"), ACTIONS)
def test_each_action_does_what_the_card_does(
    api_client, admin_client, mssp_admin, account, partner_role, customer_role,
    action, card, start, end, email, status,
):  # fmt: skip
    by_api = user_in(account, partner_role, start)
    by_console = user_in(account, partner_role, start, name="Cleo Console", email="cleo@x.ex")
    api_body = {"role": "Customer User"} if action == "change-role" else None
    form = {"confirmed": "1", "role": customer_role.pk}

    response = post(api_client, by_api.contact, action, api_body)
    card_url = reverse("contact-portal-user", args=["acme", by_console.contact.pk, card])
    console = admin_client.post(card_url, form)

    assert response.status_code == status
    assert console.status_code == 302
    events = {
        event.subject_label.split()[0]: event
        for event in AuditEvent.objects.exclude(action="create_api_token")
    }
    api_event, console_event = events["Pia"], events["Cleo"]
    assert api_event.actor_label == TOKEN_LABEL
    assert console_event.actor == mssp_admin
    same = ["action", "before", "after", "detail", "outcome"]
    assert [getattr(api_event, f) for f in same] == [getattr(console_event, f) for f in same]
    sent = set(OutboxEmail.objects.filter(user=by_api.pk).values_list("kind", flat=True))
    assert sent == ({email} if email else set())
    if end is None:
        assert not User.objects.filter(pk=by_api.pk).exists()
        assert response.json()["portal_user"] is None
        assert response.json()["allowed_actions"] == ["enable"]
    else:
        by_api.refresh_from_db()
        assert by_api.state == end
        assert response.json()["portal_user"]["state"] == end
    if action == "change-role":
        assert by_api.role == customer_role


@pytest.mark.parametrize(
    ("action", "state", "label"),
    [
        ("disable", DISABLED, "Disable"),
        ("reactivate", ENABLED, "Reactivate"),
        ("reinvite", ENABLED, "Reinvite"),
        ("reset-password", UNCONFIRMED, "Reset password"),
        ("send-login-email", DISABLED, "Send login email"),
        ("delete", ENABLED, "Delete"),
    ],
)
def test_an_action_the_state_does_not_allow_is_409(
    api_client, account, partner_role, action, state, label
):
    user = user_in(account, partner_role, state)
    before = unchanged()
    response = post(api_client, user.contact, action)
    assert response.status_code == 409
    message = f"{label} is not possible for Pia Portal now: the user is {state.label}."
    assert response.json() == {"error": message}
    assert unchanged() == before


def test_a_magic_link_needs_an_enabled_user(api_client, account, partner_role):
    user = user_in(account, partner_role, DISABLED)
    response = post(api_client, user.contact, "magic-link")
    assert response.status_code == 409
    assert response.json() == {
        "error": "Cannot create a magic link for Pia Portal: the user is Disabled."
    }
    assert not user.login_tokens.exists()


def test_a_user_whose_contact_is_deleted_gets_no_sign_in_email(api_client, pia):
    pia.contact.deleted_at = timezone.now()
    pia.contact.save()
    response = post(api_client, pia.contact, "send-login-email")
    assert response.status_code == 409
    assert response.json()["error"] == (
        "Send login email is not possible for Pia Portal now: their CRM contact is deleted."
    )


def test_the_account_admin_seat_is_not_deleted(api_client, account, partner_role):
    admin = user_in(account, partner_role, UserState.DISABLED, is_account_admin=True)
    response = post(api_client, admin.contact, "delete")
    assert response.status_code == 409
    assert User.objects.filter(pk=admin.pk).exists()


def test_reactivating_past_the_licenses_is_409(api_client, account, partner_role, pia):
    account.partner_licenses = 1
    account.save()
    dora = user_in(account, partner_role, UserState.DISABLED, name="Dora", email="dora@x.ex")
    response = post(api_client, dora.contact, "reactivate")
    assert response.status_code == 409
    assert response.json()["error"] == "No Partner licenses left: 1 of 1 in use."
    dora.refresh_from_db()
    assert dora.state == UserState.DISABLED


def test_acting_on_a_contact_without_a_user_says_what_to_do(api_client, carl):
    response = post(api_client, carl, "disable")
    assert response.status_code == 409
    assert response.json()["error"] == (
        "Carl Contact has no portal user. Enable the contact as a portal user first."
    )


def test_change_role_checks_the_role_like_enable(api_client, pia, inactive_role):
    assert post(api_client, pia.contact, "change-role", {"role": "Reseller"}).status_code == 400
    assert post(api_client, pia.contact, "change-role", {}).status_code == 400
    same = post(api_client, pia.contact, "change-role", {"role": "Partner User"})
    assert same.status_code == 409
    assert same.json()["error"] == "Pia Portal already has the role 'Partner User'."


# --- Magic links ---


def test_a_magic_link_signs_the_user_in_at_the_portal(api_client, pia, settings):
    settings.PORTAL_BASE_URL = "https://portal.example"
    response = post(api_client, pia.contact, "magic-link", {"target": "courses"})

    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    body = response.json()
    assert body["target"] == "courses"
    assert body["url"].startswith("https://portal.example/p/acme/magic/")
    event = AuditEvent.objects.get(action="issue_magic_link")
    assert (event.actor_label, event.detail) == (TOKEN_LABEL, "courses")
    assert body["expires_at"] == pia.login_tokens.get().expires_at.isoformat()

    portal = Client()
    path = body["url"].removeprefix("https://portal.example")
    assert portal.get(path).status_code == 200  # a scanner opening the link uses nothing
    landing = portal.post(path)
    assert landing.status_code == 302
    assert landing.url == "/p/acme/?section=courses"
    assert "Welcome, Pia Portal" in portal.get("/p/acme/").content.decode()
    assert portal.post(path).status_code == 400  # single use


def test_a_magic_link_to_an_unknown_section_is_400(api_client, pia):
    response = post(api_client, pia.contact, "magic-link", {"target": "billing"})
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "target", "message": "Must be one of: courses, communities, affiliates."}
    ]
    assert not pia.login_tokens.exists()


# --- Bodies the API cannot use ---


REQUIRED = [{"field": "role", "message": "This field is required."}]
WRONG = '{"role": 7, "user_type": "employee", "send_invitation": "yes", "extra": 1}'
WRONG_ERRORS = [
    {
        "field": "extra",
        "message": "Unknown field. Use: role, user_type, send_invitation, access_ends_on.",
    },
    {"field": "role", "message": "Must be a string."},
    {"field": "user_type", "message": "Must be one of: partner, customer."},
    {"field": "send_invitation", "message": "Must be true or false."},
]


@pytest.mark.parametrize(
    ("body", "content_type", "error", "errors"),
    [
        ("{not json", "application/json", "The body is not valid JSON", None),
        ("[1, 2]", "application/json", "The body must be a JSON object.", None),
        ("role=Partner+User", "application/x-www-form-urlencoded", "Send the body as JSON", None),
        ("{}", "application/json", "The body has errors", REQUIRED),
        ('{"role": null}', "application/json", "The body has errors", REQUIRED),
        (WRONG, "application/json", "The body has errors", WRONG_ERRORS),
    ],
)
def test_a_body_the_api_cannot_use_is_400_per_field(
    api_client, carl, partner_role, body, content_type, error, errors
):
    response = api_client.post(url(carl, "enable"), body, content_type=content_type)
    assert response.status_code == 400
    assert response.json()["error"].startswith(error)
    assert response.json().get("errors") == errors
    assert not User.objects.filter(contact=carl).exists()


def test_fields_are_refused_where_an_action_takes_none(api_client, pia):
    response = post(api_client, pia.contact, "disable", {"confirmed": True})
    assert response.status_code == 400
    unknown = {"field": "confirmed", "message": "Unknown field. Use: none."}
    assert response.json()["errors"] == [unknown]
    pia.refresh_from_db()
    assert pia.state == UserState.ENABLED


def test_a_wrong_method_is_405_naming_the_right_one(api_client, pia):
    response = api_client.get(url(pia.contact, "disable"))
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json() == {"error": "Use POST here."}
    assert api_client.delete(url(pia.contact))["Allow"] == "GET"


# --- Who may call ---


@pytest.fixture
def globex_client(other_account, mssp_admin):
    _, secret = api_tokens.create_token(other_account, "Globex sync", by=mssp_admin)
    return api_client_for(secret)


@pytest.mark.parametrize("action", ["", "enable", "disable", "magic-link", "change-role"])
def test_another_accounts_token_reaches_nothing(globex_client, other_account, pia, action):
    before = unchanged()
    body = {"role": "Partner User"} if action in ("enable", "change-role") else None
    # Acme's slug (the token cannot even tell that Acme exists), then Globex's own slug with
    # an Acme contact's id.
    for slug in ["acme", other_account.slug]:
        if action:
            response = post(globex_client, pia.contact, action, body, slug=slug)
        else:
            response = globex_client.get(url(pia.contact, slug=slug))
        assert response.status_code == 404
        assert response.json() == {"error": "Not found."}
    assert unchanged() == before


def test_a_token_is_needed_and_must_be_live(client, api_client, api_token, mssp_admin, pia):
    for caller in [client, api_client_for("pat_not-a-real-token"), api_client_for("")]:
        response = caller.post(url(pia.contact, "disable"), content_type="application/json")
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == 'Bearer realm="portal-admin"'
        assert "API token" in response.json()["error"]
    api_tokens.revoke_token(api_token, by=mssp_admin)
    assert post(api_client, pia.contact, "disable").status_code == 401
    assert api_client.get(url(pia.contact)).status_code == 401
    pia.refresh_from_db()
    assert pia.state == UserState.ENABLED


def test_a_console_session_is_no_token(admin_client, pia):
    assert admin_client.get(url(pia.contact)).status_code == 401


def test_a_lookup_takes_a_fixed_number_of_queries(
    api_client, account, partner_role, customer_role, pia, django_assert_max_num_queries
):
    for n in range(5):
        RoleFactory(portal_account=account, name=f"Extra role {n}")
    api_client.get(url(pia.contact))  # the token's "last used" is written once a minute
    # The token, the account, the contact with its user and role, the active roles.
    with django_assert_max_num_queries(4):
        assert api_client.get(url(pia.contact)).status_code == 200
