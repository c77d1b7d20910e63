import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import AuditEvent, PortalAccount, Role, UserState, UserType
from tests.factories import PortalAccountFactory, PortalUserFactory, RoleFactory

LIST = reverse("portal-accounts")
CREATE = reverse("portal-account-create")


def settings_url(account):
    return reverse("portal-account-settings", kwargs={"slug": account.slug})


def roles_url(account):
    return reverse("roles", kwargs={"slug": account.slug})


def role_url(role):
    return reverse("role-edit", kwargs={"slug": role.portal_account.slug, "role_id": role.pk})


def users(account, count, **kwargs):
    return PortalUserFactory.create_batch(count, portal_account=account, **kwargs)


def account_data(**changes):
    data = {
        "name": "Umbrella Portal",
        "slug": "umbrella",
        "partner_licenses": 5,
        "customer_licenses": 20,
        "employee_licenses": 2,
    }
    return {**data, **changes}


def settings_data(account, **changes):
    data = {
        "name": account.name,
        "slug": account.slug,
        "partner_licenses": account.partner_licenses,
        "customer_licenses": account.customer_licenses,
        "employee_licenses": account.employee_licenses,
    }
    return {**data, **changes}


# --- The list ---


def test_the_list_shows_user_counts_and_seats_in_use(admin_client, account, other_account):
    account.customer_licenses = 15
    account.save()
    users(account, 10, user_type=UserType.CUSTOMER)
    users(account, 2, user_type=UserType.CUSTOMER, state=UserState.UNCONFIRMED)
    users(account, 4, user_type=UserType.CUSTOMER, state=UserState.DISABLED)
    users(account, 1, user_type=UserType.EMPLOYEE)

    page = admin_client.get(LIST).content.decode()

    assert "Acme Portal" in page
    assert "Globex Portal" in page
    assert account.portal_path() in page
    assert "12 of 15 used" in page  # disabled customers give their seat back
    assert "1 of 10 used" in page
    assert "0 of 10 used" in page
    assert reverse("dashboard", kwargs={"slug": "acme"}) in page
    row = page[page.index("Acme Portal") : page.index("Globex Portal")]
    # Enabled (10 customers, 1 employee), disabled, unconfirmed.
    assert re.findall(r'<td class="num">(\d+)</td>', row) == ["11", "4", "2"]


def test_an_account_at_80_percent_of_a_type_is_marked_nearly_full(admin_client, account):
    account.partner_licenses = 10
    account.save()
    users(account, 8, user_type=UserType.PARTNER)

    page = admin_client.get(LIST).content.decode()

    assert "8 of 10 used" in page
    assert "Nearly full</span>" in page


def test_below_80_percent_there_is_no_warning(admin_client, account):
    users(account, 7, user_type=UserType.PARTNER)
    page = admin_client.get(LIST).content.decode()
    assert "7 of 10 used" in page
    assert "Nearly full</span>" not in page
    assert "Over limit</span>" not in page


def test_the_list_makes_the_same_number_of_queries_for_any_number_of_accounts(
    admin_client, account, django_assert_num_queries
):
    users(account, 3)
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get(LIST).status_code == 200
    for _ in range(5):
        more = PortalAccountFactory()
        users(more, 2)
        users(more, 1, state=UserState.DISABLED, user_type=UserType.EMPLOYEE)

    with django_assert_num_queries(len(few.captured_queries)):
        page = admin_client.get(LIST).content.decode()
    assert page.count("2 of 10 used") == 5


def test_technicians_see_the_list_without_the_new_account_button(technician_client, account):
    page = technician_client.get(LIST)
    assert page.status_code == 200
    assert "Acme Portal" in page.content.decode()
    assert CREATE not in page.content.decode()


def test_mssp_admins_get_the_new_account_button(admin_client):
    assert CREATE in admin_client.get(LIST).content.decode()


def test_account_admins_cannot_see_the_list(account_admin_client):
    assert account_admin_client.get(LIST).status_code == 403


# --- Creating and editing portal accounts ---


def test_an_mssp_admin_creates_a_portal_account_with_an_audit_event(admin_client, mssp_admin):
    response = admin_client.post(CREATE, account_data())

    account = PortalAccount.objects.get(slug="umbrella")
    assert response.status_code == 302
    assert (account.name, account.partner_licenses, account.customer_licenses) == (
        "Umbrella Portal",
        5,
        20,
    )
    event = AuditEvent.objects.get(action="create_portal_account")
    assert event.actor == mssp_admin
    assert event.portal_account == account
    assert event.after["slug"] == "umbrella"
    assert event.ip_address == "127.0.0.1"
    assert (
        "Portal account Umbrella Portal created" in admin_client.get(response.url).content.decode()
    )


def test_an_empty_slug_is_made_from_the_name(admin_client, account):
    admin_client.post(CREATE, account_data(name="Acme Portal", slug=""))
    assert PortalAccount.objects.filter(slug="acme-portal").exists()
    admin_client.post(CREATE, account_data(name="Acme Portal", slug=""))
    assert PortalAccount.objects.filter(slug="acme-portal-2").exists()


def test_a_name_with_underscores_makes_a_portal_url_name_that_follows_the_rule(admin_client):
    admin_client.post(CREATE, account_data(name="Wayne__Enterprises_Ltd", slug=""))
    assert PortalAccount.objects.filter(slug="wayne-enterprises-ltd").exists()


def test_the_create_page_suggests_the_portal_url_as_the_name_is_typed(admin_client, account):
    response = admin_client.get(
        CREATE, {"name": "Wayne Enterprises"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert "/p/wayne-enterprises/" in response.content.decode()
    assert "<form" not in response.content.decode()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": ""}, "This field is required"),
        ({"slug": "acme"}, "Another portal account has this portal URL name"),
        ({"slug": "not a slug!"}, "Use lowercase letters and numbers"),
        ({"slug": "a_b"}, "no spaces, underscores or other signs"),
        ({"slug": "-"}, "Use lowercase letters and numbers"),
        ({"slug": "a--b"}, "single hyphens"),
        ({"slug": "new"}, "reserved"),
        ({"name": "!!!", "slug": ""}, "Enter a portal URL name"),
        ({"partner_licenses": -1}, "greater than or equal to 0"),
        ({"customer_licenses": "lots"}, "Enter a whole number"),
        ({"employee_licenses": 10**12}, "less than or equal to"),
    ],
)
def test_invalid_accounts_are_refused_with_a_message(admin_client, account, changes, message):
    response = admin_client.post(CREATE, account_data(**changes))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert PortalAccount.objects.count() == 1
    assert not AuditEvent.objects.exists()


def test_technicians_cannot_create_or_edit_accounts(technician_client, account):
    assert technician_client.get(CREATE).status_code == 403
    assert technician_client.post(CREATE, account_data()).status_code == 403
    assert technician_client.get(settings_url(account)).status_code == 403
    response = technician_client.post(settings_url(account), settings_data(account, name="Hacked"))
    assert response.status_code == 403
    account.refresh_from_db()
    assert account.name == "Acme Portal"
    assert not PortalAccount.objects.filter(slug="umbrella").exists()


def test_account_admins_cannot_edit_their_own_account(account_admin_client, account):
    response = account_admin_client.post(settings_url(account), settings_data(account, name="X"))
    assert response.status_code == 403
    account.refresh_from_db()
    assert account.name == "Acme Portal"


def test_an_mssp_admin_edits_an_account_with_an_audit_event_of_the_change(admin_client, account):
    response = admin_client.post(
        settings_url(account), settings_data(account, name="Acme Partners", partner_licenses=25)
    )

    assert response.status_code == 302
    account.refresh_from_db()
    assert (account.name, account.partner_licenses) == ("Acme Partners", 25)
    event = AuditEvent.objects.get(action="update_portal_account")
    assert event.before == {"name": "Acme Portal", "partner_licenses": 10}
    assert event.after == {"name": "Acme Partners", "partner_licenses": 25}
    assert "Saved the settings of Acme Partners" in admin_client.get(response.url).content.decode()


def test_saving_unchanged_settings_writes_no_audit_event(admin_client, account):
    response = admin_client.post(settings_url(account), settings_data(account), follow=True)
    assert "Nothing to save" in response.content.decode()
    assert not AuditEvent.objects.exists()


def test_changing_the_slug_moves_the_settings_page(admin_client, account):
    response = admin_client.post(settings_url(account), settings_data(account, slug="acme-two"))
    assert response.url == reverse("portal-account-settings", kwargs={"slug": "acme-two"})
    assert admin_client.get(settings_url(account)).status_code == 404


def test_lowering_licenses_below_the_seats_in_use_is_saved_with_a_warning(admin_client, account):
    users(account, 6, user_type=UserType.CUSTOMER)

    response = admin_client.post(
        settings_url(account), settings_data(account, customer_licenses=4), follow=True
    )

    account.refresh_from_db()
    assert account.customer_licenses == 4
    page = response.content.decode()
    assert "Customer licenses are now 4, but 6 are in use" in page
    assert "until 2 of them are disabled or deleted" in page
    assert "Over limit</span>" in page


def test_invalid_settings_change_nothing(admin_client, account, other_account):
    response = admin_client.post(
        settings_url(account), settings_data(account, slug="globex", name="Renamed")
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Another portal account has this portal URL name" in page
    # The page's own heading and links still show the saved account.
    assert reverse("dashboard", kwargs={"slug": "acme"}) in page
    account.refresh_from_db()
    assert (account.name, account.slug) == ("Acme Portal", "acme")
    assert not AuditEvent.objects.exists()


def test_another_accounts_settings_are_404_for_a_made_up_slug(admin_client, db):
    assert (
        admin_client.get(reverse("portal-account-settings", kwargs={"slug": "nope"})).status_code
        == 404
    )


# --- Roles ---


def test_roles_list_their_status_and_how_many_users_have_them(admin_client, account, partner_role):
    users(account, 3, role=partner_role)
    RoleFactory(portal_account=account, name="Reseller", active=False)

    page = admin_client.get(roles_url(account)).content.decode()

    assert "Partner User" in page
    assert '<td data-label="Users" class="num">3</td>' in page
    assert "Reseller" in page
    assert "Inactive" in page


def test_an_mssp_admin_adds_a_role_with_an_audit_event(admin_client, account, mssp_admin):
    response = admin_client.post(
        roles_url(account), {"name": "Partner Manager", "user_type": "partner"}
    )

    assert response.status_code == 302
    role = Role.objects.get(portal_account=account, name="Partner Manager")
    assert role.active
    event = AuditEvent.objects.get(action="create_role")
    assert (event.actor, event.portal_account, event.after["name"]) == (
        mssp_admin,
        account,
        "Partner Manager",
    )


def test_a_duplicate_role_name_is_a_plain_error(admin_client, account, partner_role):
    response = admin_client.post(roles_url(account), {"name": "Partner User"})

    assert response.status_code == 400
    assert "already has a role named" in response.content.decode()
    assert Role.objects.filter(portal_account=account).count() == 1
    assert not AuditEvent.objects.exists()


def test_role_names_are_case_sensitive_and_per_account(
    admin_client, account, other_account, partner_role
):
    for where, name in [(account, "partner user"), (other_account, "Partner User")]:
        posted = {"name": name, "user_type": "partner"}
        assert admin_client.post(roles_url(where), posted).status_code == 302
    assert Role.objects.filter(name__iexact="partner user").count() == 3


def test_an_empty_role_name_is_refused(admin_client, account):
    response = admin_client.post(roles_url(account), {"name": "   "})
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()
    assert not Role.objects.exists()


def test_renaming_a_role_keeps_its_users_and_is_audited(admin_client, account, partner_role):
    user = users(account, 1, role=partner_role)[0]

    posted = {"name": "Partner Member", "user_type": "partner"}
    response = admin_client.post(role_url(partner_role), posted)

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.role.name == "Partner Member"
    event = AuditEvent.objects.get(action="rename_role")
    assert (event.before, event.after["name"]) == ({"name": "Partner User"}, "Partner Member")


def test_renaming_a_role_to_a_taken_name_is_refused(admin_client, account, partner_role):
    RoleFactory(portal_account=account, name="Customer User")

    posted = {"name": "Customer User", "user_type": "partner"}
    response = admin_client.post(role_url(partner_role), posted)

    assert response.status_code == 400
    page = response.content.decode()
    assert "already has a role named" in page
    assert "Edit “Partner User”" in page
    partner_role.refresh_from_db()
    assert partner_role.name == "Partner User"


def test_deactivating_and_activating_a_role_is_audited(admin_client, account, partner_role):
    admin_client.post(role_url(partner_role), {"action": "deactivate"})
    partner_role.refresh_from_db()
    assert not partner_role.active

    response = admin_client.post(role_url(partner_role), {"action": "activate"}, follow=True)
    partner_role.refresh_from_db()
    assert partner_role.active
    assert "Role Partner User activated" in response.content.decode()
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["deactivate_role", "activate_role"]


def test_roles_are_for_mssp_admins_only(technician_client, account, partner_role):
    assert technician_client.get(roles_url(account)).status_code == 403
    assert technician_client.post(roles_url(account), {"name": "Sneaky"}).status_code == 403
    response = technician_client.post(role_url(partner_role), {"action": "deactivate"})
    assert response.status_code == 403
    partner_role.refresh_from_db()
    assert partner_role.active
    assert not Role.objects.filter(name="Sneaky").exists()


def test_a_role_of_another_account_is_404(admin_client, account, other_account):
    foreign = RoleFactory(portal_account=other_account, name="Globex Role")
    url = reverse("role-edit", kwargs={"slug": account.slug, "role_id": foreign.pk})
    assert admin_client.post(url, {"action": "deactivate"}).status_code == 404
    foreign.refresh_from_db()
    assert foreign.active
