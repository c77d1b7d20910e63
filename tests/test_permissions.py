"""Who may do what in the console: each persona (MSSP admin, MSSP technician, Acme's account
admin) tries each representative action on Acme. Allowed actions must have happened in the
database; refused ones answer 403 and change nothing at all."""

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.urls import reverse

from accounts import lifecycle
from accounts.models import EmailKind, OutboxEmail, PortalAccount, Role, User, UserState, UserType
from tests.factories import PortalUserFactory
from tests.test_tenant_isolation import describe_changes, snapshot

MSSP_ADMIN, TECHNICIAN, ACCOUNT_ADMIN = "mssp_admin", "technician", "account_admin"
EVERYONE = {MSSP_ADMIN, TECHNICIAN, ACCOUNT_ADMIN}
MSSP = {MSSP_ADMIN, TECHNICIAN}
CLIENTS = {
    MSSP_ADMIN: "admin_client",
    TECHNICIAN: "technician_client",
    ACCOUNT_ADMIN: "account_admin_client",
}


@dataclass
class Team:
    """Acme's people: Ada holds the account admin seat."""

    account: PortalAccount
    partner_role: Role
    customer_role: Role
    ada: User
    ella: User  # enabled
    uma: User  # unconfirmed, invited through the lifecycle
    dan: User  # disabled

    def fresh(self, user):
        return User.objects.filter(pk=user.pk).first()


@pytest.fixture
def team(account, partner_role, customer_role, account_admin, mssp_admin):
    make = lambda **kw: PortalUserFactory(portal_account=account, role=partner_role, **kw)  # noqa: E731
    uma = lifecycle.invite(
        account,
        user_type=UserType.PARTNER,
        role=partner_role,
        by=mssp_admin,
        name="Uma Unconfirmed",
        email="uma@acme.example",
    )
    return Team(
        account=account,
        partner_role=partner_role,
        customer_role=customer_role,
        ada=account_admin,
        ella=make(name="Ella Enabled", email="ella@acme.example"),
        uma=uma,
        dan=make(name="Dan Disabled", email="dan@acme.example", state=UserState.DISABLED),
    )


def _action(user, action):
    return reverse("user-action", args=[user.portal_account.slug, user.pk, action])


def _emailed(user, kind):
    return OutboxEmail.objects.filter(user_id=user.pk, kind=kind).exists()


@dataclass
class Case:
    name: str
    allowed: set
    request: Callable  # team -> (method, url, data)
    done: Callable  # (team, response) -> True when the change happened / the page showed
    status: int = 302  # what an allowed person gets
    denied_status: int = 403


def page_case(name, allowed, url, shows):
    return Case(
        name,
        allowed,
        lambda t: ("GET", url(t), None),
        lambda t, r: shows(t) in r.content.decode(),
        status=200,
    )


CASES = [
    # Portal accounts, their settings and roles: the list for MSSP staff, changes for admins.
    page_case(
        "accounts list", MSSP, lambda t: reverse("portal-accounts"), lambda t: t.account.name
    ),
    Case(
        "create account",
        {MSSP_ADMIN},
        lambda t: (
            "POST",
            reverse("portal-account-create"),
            {
                "name": "Umbrella Portal",
                "slug": "umbrella",
                "partner_licenses": 5,
                "customer_licenses": 5,
                "employee_licenses": 5,
            },
        ),
        lambda t, r: PortalAccount.objects.filter(slug="umbrella").exists(),
    ),
    page_case(
        "account settings page",
        {MSSP_ADMIN},
        lambda t: reverse("portal-account-settings", args=[t.account.slug]),
        lambda t: "Partner licenses",
    ),
    Case(
        "change licenses",
        {MSSP_ADMIN},
        lambda t: (
            "POST",
            reverse("portal-account-settings", args=[t.account.slug]),
            {
                "name": t.account.name,
                "slug": t.account.slug,
                "partner_licenses": 77,
                "customer_licenses": t.account.customer_licenses,
                "employee_licenses": t.account.employee_licenses,
            },
        ),
        lambda t, r: PortalAccount.objects.get(pk=t.account.pk).partner_licenses == 77,
    ),
    page_case(
        "roles page",
        {MSSP_ADMIN},
        lambda t: reverse("roles", args=[t.account.slug]),
        lambda t: t.partner_role.name,
    ),
    Case(
        "add role",
        {MSSP_ADMIN},
        lambda t: (
            "POST",
            reverse("roles", args=[t.account.slug]),
            {"name": "Reseller", "user_type": "partner"},
        ),
        lambda t, r: Role.objects.filter(portal_account=t.account, name="Reseller").exists(),
    ),
    Case(
        "deactivate role",
        {MSSP_ADMIN},
        lambda t: (
            "POST",
            reverse("role-edit", args=[t.account.slug, t.customer_role.pk]),
            {"action": "deactivate"},
        ),
        lambda t, r: not Role.objects.get(pk=t.customer_role.pk).active,
    ),
    # The account's own pages: everyone in scope.
    page_case(
        "dashboard",
        EVERYONE,
        lambda t: reverse("dashboard", args=[t.account.slug]),
        lambda t: t.account.name,
    ),
    page_case(
        "users page",
        EVERYONE,
        lambda t: reverse("users", args=[t.account.slug]),
        lambda t: t.ella.name,
    ),
    page_case(
        "account audit log",
        EVERYONE,
        lambda t: reverse("audit-log", args=[t.account.slug]),
        lambda t: t.uma.name,  # her invitation
    ),
    page_case(
        "global audit log", {MSSP_ADMIN}, lambda t: reverse("audit-log-global"), lambda t: "Uma"
    ),
    Case(
        "export users",
        EVERYONE,
        lambda t: ("GET", reverse("users-export", args=[t.account.slug]), None),
        lambda t, r: t.ella.email in b"".join(r.streaming_content).decode(),
        status=200,
    ),
    # User actions on Acme's users: everyone in scope.
    Case(
        "disable",
        EVERYONE,
        lambda t: ("POST", _action(t.ella, "disable"), {}),
        lambda t, r: t.fresh(t.ella).state == UserState.DISABLED,
    ),
    Case(
        "enable",
        EVERYONE,
        lambda t: ("POST", _action(t.dan, "enable"), {}),
        lambda t, r: (
            t.fresh(t.dan).state == UserState.ENABLED and _emailed(t.dan, EmailKind.ACCESS_RESTORED)
        ),
    ),
    Case(
        "reinvite",
        EVERYONE,
        lambda t: ("POST", _action(t.uma, "reinvite"), {}),
        lambda t, r: _emailed(t.uma, EmailKind.REINVITATION),
    ),
    Case(
        "reset password",
        EVERYONE,
        lambda t: ("POST", _action(t.ella, "reset-password"), {}),
        lambda t, r: _emailed(t.ella, EmailKind.PASSWORD_RESET),
    ),
    Case(
        "send login email",
        EVERYONE,
        lambda t: ("POST", _action(t.ella, "send-login-email"), {}),
        lambda t, r: _emailed(t.ella, EmailKind.LOGIN_LINK),
    ),
    Case(
        "change role",
        EVERYONE,
        lambda t: ("POST", _action(t.ella, "change-role"), {"role": t.customer_role.pk}),
        lambda t, r: t.fresh(t.ella).role_id == t.customer_role.pk,
    ),
    Case(
        "delete",
        EVERYONE,
        lambda t: ("POST", _action(t.dan, "delete"), {}),
        lambda t, r: t.fresh(t.dan) is None,
    ),
    Case(
        "add user",
        EVERYONE,
        lambda t: (
            "POST",
            reverse("user-add", args=[t.account.slug]),
            {
                "name": "Nina New",
                "email": "nina@acme.example",
                "user_type": UserType.EMPLOYEE,
                "role": t.partner_role.pk,
                "send_invitation": "on",
            },
        ),
        lambda t, r: User.objects.filter(
            portal_account=t.account, email="nina@acme.example", state=UserState.UNCONFIRMED
        ).exists(),
    ),
    Case(
        "bulk disable",
        EVERYONE,
        lambda t: (
            "POST",
            reverse("users-bulk", args=[t.account.slug]),
            {"action": "disable", "ids": [t.ella.pk, t.uma.pk], "confirmed": "1"},
        ),
        lambda t, r: t.fresh(t.ella).state == t.fresh(t.uma).state == UserState.DISABLED,
    ),
    # The account admin seat: only MSSP staff move it, and nobody but MSSP staff touches it.
    Case(
        "make admin",
        MSSP,
        lambda t: ("POST", _action(t.ella, "make-admin"), {}),
        lambda t, r: t.fresh(t.ella).is_account_admin and not t.fresh(t.ada).is_account_admin,
    ),
    Case(
        "disable the account admin",
        MSSP,
        lambda t: ("POST", _action(t.ada, "disable"), {}),
        lambda t, r: t.fresh(t.ada).state == UserState.DISABLED,
    ),
    Case(
        "change the account admin's role",
        MSSP,
        lambda t: ("POST", _action(t.ada, "change-role"), {"role": t.customer_role.pk}),
        lambda t, r: t.fresh(t.ada).role_id == t.customer_role.pk,
    ),
    Case(
        "reset the account admin's password",
        MSSP,
        lambda t: ("POST", _action(t.ada, "reset-password"), {}),
        lambda t, r: _emailed(t.ada, EmailKind.PASSWORD_RESET),
    ),
    Case(
        "send the account admin a login email",
        MSSP,
        lambda t: ("POST", _action(t.ada, "send-login-email"), {}),
        lambda t, r: _emailed(t.ada, EmailKind.LOGIN_LINK),
    ),
    page_case(
        "confirm page for the account admin's seat",
        MSSP,
        lambda t: _action(t.ada, "disable"),
        lambda t: f"Disable {t.ada.name}?",
    ),
]


@pytest.mark.parametrize("persona", [MSSP_ADMIN, TECHNICIAN, ACCOUNT_ADMIN])
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_who_may_do_what(request, persona, case, team):
    client = request.getfixturevalue(CLIENTS[persona])
    method, url, data = case.request(team)
    before = snapshot()
    response = client.get(url) if method == "GET" else client.post(url, data)
    if persona in case.allowed:
        assert response.status_code == case.status, (
            f"{persona}: {method} {url} answered {response.status_code}, expected {case.status}"
        )
        assert case.done(team, response), f"{persona}: '{case.name}' did not happen"
    else:
        assert response.status_code == case.denied_status, (
            f"{persona}: {method} {url} answered {response.status_code}, "
            f"expected {case.denied_status}"
        )
        assert describe_changes(before, snapshot()) == [], f"{persona}: '{case.name}' changed data"


def test_every_action_on_their_own_seat_is_refused_to_the_account_admin(account_admin_client, team):
    from accounts.user_actions import ACTIONS

    before = snapshot()
    for name in ACTIONS:
        url = _action(team.ada, name)
        assert account_admin_client.get(url).status_code == 403, name
        data = {"role": team.customer_role.pk} if name == "change-role" else {}
        assert account_admin_client.post(url, data).status_code == 403, name
    assert describe_changes(before, snapshot()) == []


def test_the_users_page_offers_no_actions_on_the_account_admins_own_row(
    account_admin_client, admin_client, team
):
    url = reverse("users", args=[team.account.slug])
    own_row = account_admin_client.get(url).content.decode()
    assert "Your own seat" in own_row
    assert f"/users/{team.ada.pk}/disable/" not in own_row
    assert "make-admin" not in own_row  # only MSSP staff move the seat
    assert f"/users/{team.ada.pk}/disable/" in admin_client.get(url).content.decode()


def test_a_bulk_action_skips_the_account_admins_own_seat(account_admin_client, team):
    response = account_admin_client.post(
        reverse("users-bulk", args=[team.account.slug]),
        {"action": "disable", "ids": [team.ada.pk, team.ella.pk], "confirmed": "1"},
        follow=True,
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Access disabled for 1 user." in page
    assert "You cannot change your own account admin seat" in page
    assert team.fresh(team.ella).state == UserState.DISABLED
    assert team.fresh(team.ada).state == UserState.ENABLED
