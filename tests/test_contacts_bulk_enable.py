"""'Enable as portal users' on the contacts page: tick contacts, pick a role, confirm, and each
contact ends created, skipped or failed with its reason, as rows of an import do."""

import re

import pytest
from django.db.models import Value
from django.urls import reverse

from accounts import lifecycle
from accounts.models import (
    AuditEvent,
    EmailKind,
    OutboxEmail,
    User,
    UserKind,
    UserState,
    UserType,
)
from tests.factories import ContactFactory, PortalUserFactory, RoleFactory

HTMX = {"HX-Request": "true"}


def enable_url(account):
    return reverse("contacts-enable", args=[account.slug])


def post(client, account, contacts=(), role=None, confirmed=True, headers=None, **extra):
    data = {"ids": [str(c.pk) for c in contacts], **extra}
    if role is not None:
        data["role"] = str(role.pk)
    if confirmed:
        data["confirmed"] = "1"
    return client.post(enable_url(account), data, headers=headers or {})


def portal_users():
    return User.objects.filter(kind=UserKind.PORTAL)


def outcome_rows(response):
    """{contact name: (outcome, reason)} from the outcome table."""
    html = response.content.decode()
    table = html.split('class="table outcomes"')[1].split("</table>")[0]
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]:
        cells = [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<td>(.*?)</td>", row, re.S)
        ]
        rows[cells[0]] = (cells[1], cells[2])
    return rows


@pytest.fixture
def ada(account):
    return ContactFactory(portal_account=account, name="Ada Larsen", email="ada@acme.example")


@pytest.fixture
def olga(account):
    return ContactFactory(portal_account=account, name="Olga Novak", email="olga@acme.example")


def test_the_list_offers_the_bulk_bar_with_the_contact_roles(
    admin_client, account, ada, partner_role, customer_role, employee_role, inactive_role
):
    html = admin_client.get(reverse("contacts", args=[account.slug])).content.decode()
    assert f'name="ids" value="{ada.pk}"' in html
    assert "Enable as portal users" in html
    select = html.split('name="role"')[1].split("</select>")[0]
    assert "Partner roles" in select
    assert "Customer roles" in select
    assert "Partner User" in select
    assert "Customer User" in select
    # Employees are not CRM contacts; an inactive role cannot be given.
    assert "Staff" not in select
    assert "Reseller" not in select


def test_a_contact_with_a_user_has_no_box_and_deleted_contacts_no_bulk_bar(
    admin_client, account, partner_role
):
    with_user = PortalUserFactory(portal_account=account, role=partner_role).contact
    gone = ContactFactory(portal_account=account, deleted_at="2026-01-01T00:00:00Z")
    html = admin_client.get(reverse("contacts", args=[account.slug])).content.decode()
    assert f'name="ids" value="{with_user.pk}"' not in html
    deleted = admin_client.get(reverse("contacts", args=[account.slug]) + "?show=deleted")
    assert gone.name in deleted.content.decode()
    assert "Enable as portal users" not in deleted.content.decode()


def test_asking_names_the_people_the_role_and_the_licenses(admin_client, account, partner_role):
    contacts = [
        ContactFactory(portal_account=account, name=f"{first} Larsen")
        for first in ["Ada", "Bo", "Cy", "Di", "Ed"]
    ]
    response = post(admin_client, account, contacts, partner_role, confirmed=False, headers=HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Enable 5 contacts as portal users?" in html
    assert "Ada Larsen, Bo Larsen, Cy Larsen and 2 more" in html
    assert "Partner User" in html
    assert "which takes a partner license" in html
    assert "Partner licenses: 5 needed, 10 free." in html
    # Cancel is where the focus starts: the invitations cannot be called back.
    assert re.search(r"<a [^>]*data-close-dialog autofocus>Cancel</a>", html)
    assert "<dialog" in html
    assert not User.objects.filter(contact__in=contacts).exists()


def test_without_javascript_the_confirmation_is_a_page_and_the_outcome_comes_back_with_the_list(
    admin_client, account, ada, olga, partner_role
):
    asked = post(admin_client, account, [ada, olga], partner_role, confirmed=False)
    assert asked.status_code == 200
    assert "<dialog" not in asked.content.decode()
    assert "Ada Larsen and Olga Novak" in asked.content.decode()
    done = post(admin_client, account, [ada, olga], partner_role)
    assert done.status_code == 200
    assert outcome_rows(done) == {
        "Ada Larsen": ("Created", "Invited"),
        "Olga Novak": ("Created", "Invited"),
    }
    assert "2 created" in done.content.decode()


def test_each_new_user_gets_the_role_its_type_an_audit_event_and_an_invitation(
    admin_client, mssp_admin, account, ada, olga, customer_role
):
    response = post(admin_client, account, [ada, olga], customer_role, headers=HTMX)
    assert response.status_code == 200
    assert response.headers["HX-Push-Url"] == reverse("contacts", args=[account.slug])
    for contact in (ada, olga):
        user = User.objects.get(contact=contact)
        assert (user.role, user.user_type, user.state) == (
            customer_role,
            UserType.CUSTOMER,
            UserState.UNCONFIRMED,
        )
        assert AuditEvent.objects.filter(
            action="invite", subject_user=user, actor=mssp_admin
        ).exists()
        assert OutboxEmail.objects.filter(user=user, kind=EmailKind.INVITATION).count() == 1


def test_contacts_that_have_a_user_or_are_deleted_are_skipped_with_the_reason(
    admin_client, account, ada, olga, partner_role
):
    lifecycle.invite(account, role=partner_role, by=None, contact=olga, send_email=False)
    gone = ContactFactory(
        portal_account=account, name="Gus Gone", deleted_at="2026-01-01T00:00:00Z"
    )
    before = AuditEvent.objects.count()
    response = post(admin_client, account, [ada, olga, gone], partner_role)
    assert outcome_rows(response) == {
        "Ada Larsen": ("Created", "Invited"),
        "Gus Gone": ("Skipped", "The contact is deleted in the CRM: restore it first."),
        "Olga Novak": ("Skipped", "Already a portal user."),
    }
    assert User.objects.filter(contact=olga).count() == 1
    assert not User.objects.filter(contact=gone).exists()
    assert AuditEvent.objects.count() == before + 1  # Ada's invite only


def test_no_licenses_left_fails_each_row_past_the_limit_and_leaves_nothing_behind(
    admin_client, account, partner_role, customer_role
):
    account.customer_licenses = 1
    account.save()
    contacts = [ContactFactory(portal_account=account, name=f"Cust {n}") for n in range(3)]
    response = post(admin_client, account, contacts, customer_role)
    assert response.status_code == 200
    assert outcome_rows(response) == {
        "Cust 0": ("Created", "Invited"),
        "Cust 1": ("Failed", "No Customer licenses left: 1 of 1 in use."),
        "Cust 2": ("Failed", "No Customer licenses left: 1 of 1 in use."),
    }
    failed = contacts[1:]
    assert not User.objects.filter(contact__in=failed).exists()
    assert AuditEvent.objects.filter(action="invite").count() == 1
    assert OutboxEmail.objects.count() == 1
    # The partner seats are another type's: that role still works.
    again = post(admin_client, account, failed, partner_role)
    assert [outcome for outcome, _ in outcome_rows(again).values()] == ["Created", "Created"]


def test_when_no_seat_is_free_the_dialog_says_so_and_the_run_changes_nothing(
    admin_client, account, ada, olga, customer_role
):
    account.customer_licenses = 0
    account.save()
    asked = post(admin_client, account, [ada, olga], customer_role, confirmed=False)
    html = asked.content.decode()
    assert "Customer licenses: 2 needed, 0 free. Nobody can be enabled" in html
    assert "Enable 2</button>" not in html
    done = post(admin_client, account, [ada, olga], customer_role)
    assert done.status_code == 409
    assert {outcome for outcome, _ in outcome_rows(done).values()} == {"Failed"}
    assert not portal_users().exists()
    assert not AuditEvent.objects.filter(action="invite").exists()
    assert not OutboxEmail.objects.exists()


def test_a_contact_enabled_meanwhile_is_skipped_not_an_error(
    admin_client, technician, account, ada, olga, partner_role, monkeypatch
):
    """The page was read before another admin gave Olga a user: her row, read as free, reaches
    the invite, which finds the user and says so plainly (no 500, nobody created twice)."""
    from contacts import bulk_enable

    lifecycle.invite(account, role=partner_role, by=technician, contact=olga)
    invited = []
    real_invite = lifecycle.invite
    monkeypatch.setattr(
        bulk_enable, "with_user_flag", lambda contacts: contacts.annotate(has_user=Value(False))
    )
    monkeypatch.setattr(
        lifecycle, "invite", lambda *a, **kw: invited.append(kw["contact"]) or real_invite(*a, **kw)
    )
    response = post(admin_client, account, [ada, olga], partner_role)
    assert response.status_code == 200
    assert outcome_rows(response)["Olga Novak"] == ("Skipped", "Already a portal user.")
    assert User.objects.filter(contact=olga).count() == 1
    assert olga in invited  # the invite itself refused her


def test_another_accounts_contacts_are_ignored_and_never_named(
    account_admin_client, account, other_account, ada, partner_role
):
    foreign = ContactFactory(portal_account=other_account, name="Gina Globex")
    response = post(account_admin_client, account, [foreign], partner_role)
    assert response.status_code == 400
    assert "Select at least one contact first." in response.content.decode()
    assert "Gina Globex" not in response.content.decode()
    mixed = post(account_admin_client, account, [ada, foreign], partner_role)
    assert list(outcome_rows(mixed)) == ["Ada Larsen"]
    assert not User.objects.filter(contact=foreign).exists()
    # Another account's slug is a 404, and its role is no choice here.
    other = reverse("contacts-enable", args=[other_account.slug])
    assert account_admin_client.post(other, {"ids": [foreign.pk]}).status_code == 404
    globex_role = RoleFactory(portal_account=other_account)
    refused = post(account_admin_client, account, [ada], globex_role)
    assert refused.status_code == 400
    assert User.objects.filter(contact=ada).count() == 1


def test_a_role_must_be_picked_and_be_active_and_for_contacts(
    admin_client, account, ada, employee_role, inactive_role
):
    missing = post(admin_client, account, [ada], confirmed=False)
    assert missing.status_code == 400
    assert "Pick a role." in missing.content.decode()
    for role in (employee_role, inactive_role):
        response = post(admin_client, account, [ada], role)
        assert response.status_code == 400
        assert "Pick an active role" in response.content.decode()
    assert not portal_users().exists()


def test_all_matching_takes_the_filtered_list_and_is_capped(
    admin_client, account, partner_role, settings
):
    settings.BULK_ENABLE_MAX_CONTACTS = 3
    for n in range(2):
        ContactFactory(portal_account=account, name=f"Beta {n}", crm_account_name="Beta Ltd")
    for n in range(3):
        ContactFactory(portal_account=account, name=f"Other {n}", crm_account_name="Other Inc")
    response = post(admin_client, account, role=partner_role, all_matching="1", crm="beta")
    assert list(outcome_rows(response)) == ["Beta 0", "Beta 1"]
    assert portal_users().count() == 2
    too_many = post(admin_client, account, role=partner_role, all_matching="1", confirmed=False)
    assert too_many.status_code == 400
    assert "More than 3 contacts selected" in too_many.content.decode()
    ids = post(admin_client, account, list(account.contacts.all()), partner_role)
    assert ids.status_code == 400
    assert portal_users().count() == 2


@pytest.mark.parametrize("ids", [["abc"], ["9" * 40], ["-1"], ["1\x00"]])
def test_ids_that_are_not_ids_are_a_plain_400(admin_client, account, partner_role, ids):
    response = admin_client.post(enable_url(account), {"ids": ids, "role": partner_role.pk})
    assert response.status_code == 400
    assert "Select at least one contact first." in response.content.decode()


def test_a_get_is_refused(admin_client, account):
    assert admin_client.get(enable_url(account)).status_code == 405
