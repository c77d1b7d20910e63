"""One page per portal user: profile, state, contact, emails, sign-ins and history, with the
row's actions; linked from the users list and the contact card; bounded and tenant-scoped."""

import pytest
from django.urls import reverse

from accounts import lifecycle
from accounts.models import AuditEvent, UserState
from mail import outbox
from tests.factories import PortalUserFactory


@pytest.fixture
def ada(account, partner_role):
    return PortalUserFactory(
        portal_account=account, role=partner_role, name="Ada Larsen", email="ada@example.com"
    )


def page_of(client, account, user):
    return client.get(reverse("user", args=[account.slug, user.pk]))


def test_the_page_shows_who_the_user_is_and_what_happened(
    technician_client, technician, account, ada
):
    lifecycle.reset_password(ada, by=technician, ip="10.0.0.1")

    page = page_of(technician_client, account, ada)

    text = page.content.decode()
    assert page.status_code == 200
    for expected in ["Ada Larsen", "ada@example.com", "Partner User", ada.contact.contact_id]:
        assert expected in text
    assert "Password reset" in text  # the email
    assert "Sent password reset" in text  # the history
    assert reverse("user-action", args=[account.slug, ada.pk, "disable"]) in text


def test_the_users_list_and_the_contact_card_link_to_it(admin_client, account, ada):
    url = reverse("user", args=[account.slug, ada.pk])
    assert url in admin_client.get(reverse("users", args=[account.slug])).content.decode()
    card = admin_client.get(reverse("contact", args=[account.slug, ada.contact.pk]))
    assert url in card.content.decode()


def test_another_accounts_user_is_a_404(account_admin_client, other_account):
    stranger = PortalUserFactory(portal_account=other_account)
    assert page_of(account_admin_client, other_account, stranger).status_code == 404
    response = account_admin_client.get(reverse("user", args=["acme", stranger.pk]))
    assert response.status_code == 404


def test_an_account_admin_sees_their_own_seat_without_actions(
    account_admin_client, account, account_admin
):
    page = page_of(account_admin_client, account, account_admin).content.decode()
    assert "your own account admin seat" in page
    assert reverse("user-action", args=[account.slug, account_admin.pk, "disable"]) not in page


def test_the_page_costs_the_same_however_long_the_history(
    admin_client, account, ada, technician, django_assert_max_num_queries
):
    for _ in range(30):
        outbox.queue_email(ada, "login_link")
        AuditEvent.objects.create(
            action="send_login_email", subject_user=ada, portal_account=account
        )
    with django_assert_max_num_queries(12):
        page = page_of(admin_client, account, ada)
    assert page.content.decode().count("Sent login email") == 20
    assert "The newest 20." in page.content.decode()


def test_a_disabled_user_says_when_and_by_whom(admin_client, account, ada, mssp_admin):
    lifecycle.disable(ada, by=mssp_admin)
    page = page_of(admin_client, account, ada).content.decode()
    assert "Disabled" in page
    assert f"by {mssp_admin.name}" in page
    assert ada.__class__.objects.get(pk=ada.pk).state == UserState.DISABLED
