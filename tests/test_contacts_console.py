"""The contacts of a portal account in the console: the list, and a contact's page with its
Portal user card, whose actions depend on the state of the contact's user."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import (
    EmailKind,
    LoginToken,
    OutboxEmail,
    TokenPurpose,
    User,
    UserKind,
    UserState,
    UserType,
)
from contacts.salesforce_ids import to_18
from tests.factories import ContactFactory, PortalUserFactory, RoleFactory

HTMX = {"HX-Request": "true"}


def contacts_url(account, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return reverse("contacts", args=[account.slug]) + (f"?{query}" if query else "")


def contact_url(contact):
    return reverse("contact", args=[contact.portal_account.slug, contact.pk])


def card_url(contact, action):
    return reverse("contact-portal-user", args=[contact.portal_account.slug, contact.pk, action])


def reload(user):
    return User.objects.filter(pk=user.pk).first()


@pytest.fixture
def jane(account):
    """A contact without a portal user."""
    return ContactFactory(
        portal_account=account,
        name="Jane Doe",
        email="jane@example.com",
        crm_account_name="Wayne Enterprises",
        salesforce_id=to_18("0035g00000AbCdE"),
    )


def user_in(account, role, state, name, **kwargs):
    return PortalUserFactory(
        portal_account=account,
        role=role,
        state=state,
        name=name,
        email=f"{name.replace(' ', '.').lower()}@example.com",
        **kwargs,
    )


@pytest.fixture
def people(account, partner_role, jane):
    return {
        "enabled": user_in(account, partner_role, UserState.ENABLED, "Eve Enabled"),
        "disabled": user_in(account, partner_role, UserState.DISABLED, "Dan Disabled"),
        "unconfirmed": user_in(account, partner_role, UserState.UNCONFIRMED, "Una Unconfirmed"),
    }


# --- the list ---


def test_the_list_shows_each_contact_with_its_portal_status(admin_client, account, people, jane):
    page = admin_client.get(contacts_url(account)).content.decode()
    row = re.search(rf'<tr id="contact-{jane.pk}">(.*?)</tr>', page, re.S).group(1)
    for text in ["Jane Doe", "jane@example.com", jane.contact_id, "Wayne Enterprises", "No user"]:
        assert text in row
    for state, label in [("enabled", "Enabled"), ("disabled", "Disabled")]:
        contact = people[state].contact
        row = re.search(rf'<tr id="contact-{contact.pk}">(.*?)</tr>', page, re.S).group(1)
        assert label in row
    assert "Unconfirmed" in page


def test_deleted_contacts_show_only_under_their_filter(admin_client, account, people):
    gone = people["enabled"].contact
    gone.deleted_at = timezone.now()
    gone.save()
    live = admin_client.get(contacts_url(account)).content.decode()
    assert "Eve Enabled" not in live
    assert "Jane Doe" in live
    deleted = admin_client.get(contacts_url(account, show="deleted")).content.decode()
    assert "Eve Enabled" in deleted
    assert "Contact deleted" in deleted
    assert "Jane Doe" not in deleted


@pytest.mark.parametrize(
    "query",
    ["jane doe", "JANE@example", "wayne", "0035g00000AbCdE", to_18("0035g00000AbCdE")],
)
def test_search_by_name_email_crm_account_and_salesforce_id(admin_client, account, people, query):
    page = admin_client.get(contacts_url(account, q=query)).content.decode()
    assert "Jane Doe" in page
    assert "Eve Enabled" not in page


def test_search_by_contact_id(admin_client, account, people, jane):
    page = admin_client.get(contacts_url(account, q=jane.contact_id)).content.decode()
    assert "Jane Doe" in page
    assert "Dan Disabled" not in page


def test_a_search_without_matches_says_so(admin_client, account, people):
    page = admin_client.get(contacts_url(account, q="nobody-here")).content.decode()
    assert "No contacts match “nobody-here”." in page


def test_pages_of_fifty(admin_client, account):
    for n in range(51):
        ContactFactory(portal_account=account, name=f"Contact {n:02d}")
    first = admin_client.get(contacts_url(account)).content.decode()
    assert "Page 1 of 2" in first
    assert first.count('<tr id="contact-') == 50
    second = admin_client.get(contacts_url(account, page=2)).content.decode()
    assert second.count('<tr id="contact-') == 1
    assert "Contact 50" in second


def test_htmx_gets_the_results_fragment_with_the_search_kept_in_links(
    admin_client, account, people
):
    response = admin_client.get(contacts_url(account, q="a"), headers=HTMX)
    body = response.content.decode()
    assert "<html" not in body
    assert 'id="contact-search"' in body
    assert 'href="?show=deleted&amp;q=a"' in body


def test_the_list_makes_a_fixed_number_of_queries(
    admin_client, account, partner_role, django_assert_max_num_queries
):
    def queries_for(**params):
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(contacts_url(account, **params)).status_code == 200
        return len(captured)

    for n in range(3):
        user_in(account, partner_role, UserState.ENABLED, f"Few {n}")
    queries_for()  # the session's first request does its own bookkeeping
    few = queries_for()
    for n in range(60):
        user_in(account, partner_role, UserState.ENABLED, f"Many {n}")
        ContactFactory(portal_account=account)
    assert queries_for() == few  # no query per row
    # Session, person, account, live and deleted counts (one query), the ids, the rows + users,
    # the roles of the bulk bar, the CRM account names the filter suggests.
    with django_assert_max_num_queries(9):  # +1: the session's second-factor device
        admin_client.get(contacts_url(account))
    with django_assert_max_num_queries(10):  # a search counts its matches (up to a cap)
        admin_client.get(contacts_url(account, q="Many", page=2))


def test_who_sees_the_contacts(
    technician_client, account_admin_client, account, other_account, jane, client
):
    other = ContactFactory(portal_account=other_account, name="Gil Globex")
    assert technician_client.get(contacts_url(other_account)).status_code == 200
    assert account_admin_client.get(contacts_url(account)).status_code == 200
    assert account_admin_client.get(contacts_url(other_account)).status_code == 404
    assert account_admin_client.get(contact_url(other)).status_code == 404
    assert "Gil Globex" not in account_admin_client.get(contacts_url(account)).content.decode()
    assert client.get(contacts_url(account)).status_code == 302


def test_the_account_nav_links_to_contacts_and_orphaned_users(admin_client, account):
    page = admin_client.get(reverse("dashboard", args=[account.slug])).content.decode()
    assert f'href="{reverse("contacts", args=["acme"])}"' in page
    assert f'href="{reverse("orphaned-users", args=["acme"])}"' in page


# --- the contact page and the card of a contact without a user ---


def test_the_contact_page_shows_the_contact(admin_client, jane):
    page = admin_client.get(contact_url(jane)).content.decode()
    for text in [
        "jane@example.com",
        jane.contact_id,
        to_18("0035g00000AbCdE"),
        "Wayne Enterprises",
        "CRM sync",
        "Enable as portal user",
    ]:
        assert text in page


def test_the_role_picker_offers_active_roles_only(
    admin_client, jane, partner_role, inactive_role, other_account
):
    RoleFactory(portal_account=other_account, name="Globex Role")
    page = admin_client.get(contact_url(jane)).content.decode()
    assert f'<option value="{partner_role.pk}">Partner User</option>' in page
    assert "Reseller" not in page
    assert "Globex Role" not in page


def enable(client, contact, role, headers=None, **data):
    body = {"role": role.pk, "user_type": UserType.PARTNER, "send_invitation": "on", **data}
    return client.post(card_url(contact, "invite"), body, headers=headers or {})


def test_enabling_with_htmx_returns_the_card_as_unconfirmed(admin_client, jane, partner_role):
    response = enable(admin_client, jane, partner_role, headers=HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body
    assert '<h2 id="portal-user-title">Portal user</h2>' in body
    assert "Unconfirmed" in body
    assert "Jane Doe is now a portal user and sent an invitation." in body
    assert "Reinvite" in body
    user = User.objects.get(contact=jane)
    assert (user.state, user.role, user.user_type) == (
        UserState.UNCONFIRMED,
        partner_role,
        UserType.PARTNER,
    )
    assert OutboxEmail.objects.filter(user=user, kind=EmailKind.INVITATION).count() == 1


def test_enabling_with_a_plain_post_redirects_to_the_contact(admin_client, jane, customer_role):
    response = enable(
        admin_client, jane, customer_role, user_type=UserType.CUSTOMER, send_invitation=""
    )
    assert response.status_code == 302
    assert response.url == contact_url(jane)
    user = User.objects.get(contact=jane)
    assert user.user_type == UserType.CUSTOMER
    assert not OutboxEmail.objects.filter(user=user).exists()
    page = admin_client.get(response.url).content.decode()
    assert "Jane Doe is now a portal user (no invitation sent yet)." in page


def test_an_inactive_role_is_refused_in_the_card(admin_client, jane, inactive_role):
    response = enable(admin_client, jane, inactive_role, headers=HTMX)
    assert response.status_code == 400
    assert "That role is inactive or not a role of this portal account" in response.content.decode()
    assert not User.objects.filter(contact=jane).exists()


def test_no_licenses_left_is_shown_in_the_card(admin_client, account, jane, partner_role):
    account.partner_licenses = 1
    account.save()
    user_in(account, partner_role, UserState.ENABLED, "Seat Holder")
    response = enable(admin_client, jane, partner_role, headers=HTMX)
    assert response.status_code == 409
    assert "No Partner licenses left: 1 of 1 in use." in response.content.decode()
    assert not User.objects.filter(contact=jane).exists()
    assert not OutboxEmail.objects.exists()


def test_a_contact_without_email_cannot_be_invited(admin_client, account, partner_role):
    nomail = ContactFactory(portal_account=account, name="No Mail", email="")
    response = enable(admin_client, nomail, partner_role)
    assert response.status_code == 409
    assert "No Mail has no valid email address" in response.content.decode()


# --- the card of a contact with a user ---


def act(client, user, action, headers=None, **data):
    return client.post(card_url(user.contact, action), data, headers=headers or {})


def test_the_enabled_card_offers_its_actions(admin_client, people):
    page = admin_client.get(contact_url(people["enabled"].contact)).content.decode()
    for label in ["Reset password", "Send login email", "Change role", "Disable…"]:
        assert label in page
    assert "Create a magic link" in page
    assert "Reinvite" not in page


def test_disable_asks_first_in_a_dialog(admin_client, people):
    eve = people["enabled"]
    response = admin_client.get(card_url(eve.contact, "disable"), headers=HTMX)
    body = response.content.decode()
    assert response["HX-Retarget"] == "#dialog-slot"
    assert "<dialog" in body
    assert "Disable Eve Enabled?" in body
    assert "will not be able to sign in" in body
    assert reload(eve).state == UserState.ENABLED


def test_the_server_requires_the_confirmation_too(admin_client, people):
    eve = people["enabled"]
    response = act(admin_client, eve, "disable")
    assert response.status_code == 400
    assert "Disable Eve Enabled?" in response.content.decode()
    assert reload(eve).state == UserState.ENABLED


def test_disable_with_htmx_updates_the_card(admin_client, people):
    eve = people["enabled"]
    response = act(admin_client, eve, "disable", headers=HTMX, confirmed="1")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Access disabled for Eve Enabled." in body
    assert "Reactivate" in body
    assert "<html" not in body
    assert reload(eve).state == UserState.DISABLED


def test_disable_with_a_plain_post_redirects(admin_client, people):
    eve = people["enabled"]
    response = act(admin_client, eve, "disable", confirmed="1")
    assert response.status_code == 302
    assert response.url == contact_url(eve.contact)
    assert reload(eve).state == UserState.DISABLED


@pytest.mark.parametrize(
    ("action", "kind", "done"),
    [
        ("reset-password", EmailKind.PASSWORD_RESET, "Password reset email sent to"),
        ("send-login-email", EmailKind.LOGIN_LINK, "Login email sent to"),
    ],
)
def test_emails_from_the_enabled_card(admin_client, people, action, kind, done):
    eve = people["enabled"]
    response = act(admin_client, eve, action, headers=HTMX)
    assert response.status_code == 200
    assert f"{done} Eve Enabled." in response.content.decode()
    assert OutboxEmail.objects.filter(user=eve, kind=kind).count() == 1


def test_change_role_from_the_card(admin_client, account, people, customer_role, inactive_role):
    eve = people["enabled"]
    response = act(admin_client, eve, "change-role", headers=HTMX, role=customer_role.pk)
    assert response.status_code == 200
    assert "Eve Enabled&#x27;s role changed to Customer User." in response.content.decode()
    assert reload(eve).role == customer_role
    response = act(admin_client, eve, "change-role", headers=HTMX, role=inactive_role.pk)
    assert response.status_code == 400
    assert "Pick an active role." in response.content.decode()
    response = act(admin_client, eve, "change-role", headers=HTMX, role=customer_role.pk)
    assert response.status_code == 409
    assert "already has the role" in response.content.decode()
    assert reload(eve).role == customer_role


def test_a_magic_link_is_shown_once_in_the_card(admin_client, people, settings):
    settings.PORTAL_BASE_URL = "https://portal.example"
    eve = people["enabled"]
    response = act(admin_client, eve, "magic-link", headers=HTMX, section="courses")
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]
    body = response.content.decode()
    assert re.search(r"https://portal\.example/p/acme/magic/[\w-]{20,}/", body)
    assert "It will not be shown again" in body
    assert LoginToken.objects.filter(
        user=eve, purpose=TokenPurpose.MAGIC_LINK, target="courses"
    ).exists()
    again = admin_client.get(contact_url(eve.contact)).content.decode()
    assert "/magic/" not in again


def test_reactivate_from_the_disabled_card(admin_client, people):
    dan = people["disabled"]
    page = admin_client.get(contact_url(dan.contact)).content.decode()
    assert "Reactivate" in page
    assert "Reset password" not in page
    response = act(admin_client, dan, "enable", headers=HTMX)
    assert response.status_code == 200
    assert "Portal login reactivated for Dan Disabled." in response.content.decode()
    assert reload(dan).state == UserState.ENABLED
    assert OutboxEmail.objects.filter(user=dan, kind=EmailKind.ACCESS_RESTORED).count() == 1


def test_reinvite_and_delete_from_the_unconfirmed_card(admin_client, people):
    una = people["unconfirmed"]
    contact = una.contact
    response = act(admin_client, una, "reinvite", headers=HTMX)
    assert "Invitation sent again to Una Unconfirmed." in response.content.decode()
    assert OutboxEmail.objects.filter(user=una, kind=EmailKind.REINVITATION).count() == 1
    response = act(admin_client, una, "delete", headers=HTMX, confirmed="1")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Portal login deleted for Una Unconfirmed." in body
    assert "Enable as portal user" in body
    assert reload(una) is None
    contact.refresh_from_db()
    assert contact.deleted_at is None


def test_an_action_the_state_does_not_offer_changes_nothing(admin_client, people):
    eve = people["enabled"]
    response = act(admin_client, eve, "reinvite", headers=HTMX)
    assert response.status_code == 409
    assert "Reinvite is not possible for Eve Enabled now: the user is Enabled." in (
        response.content.decode()
    )
    assert not OutboxEmail.objects.filter(user=eve).exists()


def test_acting_on_a_contact_without_a_user_says_what_to_do(admin_client, jane):
    response = admin_client.post(card_url(jane, "disable"), {"confirmed": "1"})
    assert response.status_code == 409
    assert "Jane Doe has no portal user. Enable the contact as a portal user first." in (
        response.content.decode()
    )


def test_an_unknown_card_action_is_404(admin_client, people):
    assert act(admin_client, people["enabled"], "make-admin").status_code == 404


def test_an_account_admin_cannot_act_on_their_own_seat(account_admin_client, account_admin, people):
    page = account_admin_client.get(contact_url(account_admin.contact)).content.decode()
    assert "This is your own account admin seat" in page
    assert "Disable…" not in page
    assert "Delete contact" not in page
    response = act(account_admin_client, account_admin, "disable", confirmed="1")
    assert response.status_code == 403
    assert reload(account_admin).state == UserState.ENABLED
    # ...and acts on anybody else's card.
    eve = people["enabled"]
    assert act(account_admin_client, eve, "disable", confirmed="1").status_code == 302
    assert reload(eve).state == UserState.DISABLED


def test_technicians_use_the_card_too(technician_client, jane, partner_role):
    assert enable(technician_client, jane, partner_role).status_code == 302
    user = User.objects.get(contact=jane)
    assert user.kind == UserKind.PORTAL


def test_the_contact_page_never_shows_a_literal_none(admin_client, account):
    contact = ContactFactory(portal_account=account, salesforce_id=None, crm_account_name="")
    page = admin_client.get(f"/accounts/{account.slug}/contacts/{contact.pk}/").content.decode()
    assert ">None<" not in page
    assert "Not linked to Salesforce" in page
