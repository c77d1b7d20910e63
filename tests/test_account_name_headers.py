"""A portal account's name is the Subject of every email the account sends: a line break there
makes the mail library refuse every message, which then stays pending for ever. Names with
control characters are refused where they are typed, as are role names (matched as typed by
the CRM, CSV files and the API)."""

import pytest
from django.urls import reverse

from accounts.models import AuditEvent, PortalAccount, Role

REFUSED = "Remove the line breaks, tabs and other control characters"
BAD_NAMES = [
    "Acme\r\nBcc: everyone@example.com",
    "Acme\nPortal",
    "Acme\rPortal",
    "Acme\tPortal",
    "Acme\x00Portal",
    "Acme\x1bPortal",
    "Acme\x85Portal",
    "Acme\u2028Portal",
    "Eve \u202egnp.exe",  # shown as "Eve exe.png"
    "Acme \u2067Portal\u2069",
]
IDS = ["crlf", "lf", "cr", "tab", "nul", "esc", "nel", "line-separator", "rtl-override", "isolate"]


def account_data(**changes):
    return {
        "name": "Umbrella Portal",
        "slug": "umbrella",
        "partner_licenses": 5,
        "customer_licenses": 20,
        "employee_licenses": 2,
        **changes,
    }


@pytest.mark.parametrize("name", BAD_NAMES, ids=IDS)
def test_a_new_account_name_with_control_characters_is_refused(admin_client, name):
    response = admin_client.post(reverse("portal-account-create"), account_data(name=name))

    assert response.status_code == 400
    assert REFUSED in response.content.decode()
    assert not PortalAccount.objects.filter(slug="umbrella").exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("name", BAD_NAMES, ids=IDS)
def test_renaming_an_account_to_a_name_with_control_characters_is_refused(
    admin_client, account, name
):
    response = admin_client.post(
        reverse("portal-account-settings", args=[account.slug]),
        account_data(name=name, slug=account.slug),
    )

    assert response.status_code == 400
    assert REFUSED in response.content.decode()
    account.refresh_from_db()
    assert account.name == "Acme Portal"
    assert account.partner_licenses != 5  # nothing of the post was saved
    assert not AuditEvent.objects.exists()


def test_a_plain_name_with_accents_and_symbols_is_fine(admin_client):
    response = admin_client.post(
        reverse("portal-account-create"), account_data(name="Ünïcode & Söhne — Portal (EU)")
    )

    assert response.status_code == 302
    assert PortalAccount.objects.get(slug="umbrella").name == "Ünïcode & Söhne — Portal (EU)"


@pytest.mark.parametrize("name", BAD_NAMES[:2], ids=IDS[:2])
def test_a_role_name_with_control_characters_is_refused(admin_client, account, name):
    response = admin_client.post(reverse("roles", args=[account.slug]), {"name": name})

    assert response.status_code == 400
    assert REFUSED in response.content.decode()
    assert not Role.objects.filter(portal_account=account).exists()


def test_renaming_a_role_to_a_name_with_control_characters_is_refused(
    admin_client, account, partner_role
):
    response = admin_client.post(
        reverse("role-edit", args=[account.slug, partner_role.pk]), {"name": "Partner\nUser"}
    )

    assert response.status_code == 400
    assert REFUSED in response.content.decode()
    partner_role.refresh_from_db()
    assert partner_role.name == "Partner User"


@pytest.mark.parametrize("name", BAD_NAMES, ids=IDS)
def test_a_new_users_name_with_control_characters_is_refused(
    admin_client, account, partner_role, name
):
    """The name is the first line of every email the user gets ("Hello <name>,"): a line break
    would let whoever adds the user write lines of their own under the MSSP's sender."""
    response = admin_client.post(
        reverse("user-add", args=[account.slug]),
        {"name": name, "email": "new@example.com", "role": partner_role.pk},
    )

    assert response.status_code == 400
    assert REFUSED in response.content.decode()
    assert not account.users.filter(email="new@example.com").exists()


def test_an_api_token_or_webhook_description_with_a_line_break_is_refused(admin_client, account):
    from api.forms import ApiTokenForm
    from webhooks.forms import EndpointForm

    token = ApiTokenForm({"name": "Sync\r\nX-Evil: 1", "scope": "sync"}, account=account)
    hook = EndpointForm(
        {"url": "https://crm.example.com/h", "description": "a\nb", "events": ["user.invited"]},
        account=account,
    )
    assert REFUSED in str(token.errors["name"])
    assert REFUSED in str(hook.errors["description"])
