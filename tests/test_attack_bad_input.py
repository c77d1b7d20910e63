"""Bad input found by probing (tests/test_attack_fuzz.py walks every page): each a 4xx or a
page that ignores it, never a 500, on PostgreSQL too."""

import pytest
from django.urls import reverse


@pytest.mark.parametrize("param", ["action", "person"])
@pytest.mark.parametrize("page", ["account", "global"])
def test_a_nul_byte_in_an_audit_log_filter_is_no_server_error(admin_client, account, param, page):
    url = (
        reverse("audit-log", args=[account.slug])
        if page == "account"
        else reverse("audit-log-global")
    )

    response = admin_client.get(url, {param: "disable\x00"})

    assert response.status_code == 200


def test_an_overlong_audit_log_filter_is_no_server_error(admin_client, account):
    response = admin_client.get(
        reverse("audit-log-global"), {"action": "x" * 20_000, "person": "y" * 20_000}
    )

    assert response.status_code == 200


# str.isdigit() says yes to "²" (and int() then says no), and to ids past any column.
ODD_IDS = ["²", "١٢", "9" * 30]


@pytest.mark.parametrize("odd", ODD_IDS)
def test_odd_digits_in_the_users_bulk_selection_are_no_server_error(admin_client, account, odd):
    url = reverse("users-bulk", args=[account.slug])

    response = admin_client.post(url, {"action": "disable", "ids": [odd], "confirmed": "1"})

    assert response.status_code == 400
    assert "Select at least one user first." in response.content.decode()


@pytest.mark.parametrize("odd", ODD_IDS)
def test_odd_digits_in_the_contacts_bulk_selection_are_no_server_error(
    admin_client, account, partner_role, odd
):
    url = reverse("contacts-enable", args=[account.slug])

    response = admin_client.post(url, {"ids": [odd], "role": partner_role.pk})

    assert response.status_code == 400
    assert "Select at least one contact first." in response.content.decode()


@pytest.mark.parametrize("odd", ODD_IDS)
def test_odd_digits_as_the_email_to_retry_are_no_server_error(admin_client, odd):
    response = admin_client.post(reverse("system-email-retry"), {"email_id": odd})

    assert response.status_code in (302, 400)


def test_saving_the_same_wording_twice_records_one_change(admin_client, account):
    """A double submit (or a second save without an edit) is no second change in the audit
    log, as for the sender and the policies."""
    from accounts.models import AuditEvent

    url = reverse("custom-email", args=[account.slug, "login_link"])
    data = {"subject": "Sign in", "body": "Hi {name}: {link} ({expires})", "action": "save"}

    admin_client.post(url, data)
    response = admin_client.post(url, data, follow=True)

    assert AuditEvent.objects.filter(action="change_email_wording").count() == 1
    assert "Nothing to save" in response.content.decode()


def test_change_role_on_the_contact_card_with_an_empty_post_asks_for_a_role(
    admin_client, account, partner_role
):
    """An empty POST left the role form unbound: is_valid() said no, with no error to show."""
    from tests.factories import PortalUserFactory

    user = PortalUserFactory(portal_account=account, role=partner_role)
    url = reverse("contact-portal-user", args=[account.slug, user.contact_id, "change-role"])

    response = admin_client.post(url, {})

    assert response.status_code == 400
    user.refresh_from_db()
    assert user.role == partner_role


def test_a_brand_colour_saved_past_the_form_never_reaches_an_email(account):
    """The portal's stylesheet already falls back to the console's colour for one; the emails
    put it into a style attribute, so they must too."""
    from mail import brand
    from mail.models import SenderIdentity
    from mail.sender_identity import sender_of

    SenderIdentity.objects.create(portal_account=account, accent_color='#0"><b>')

    assert sender_of(account).accent == brand.DEFAULT_ACCENT
