"""Issue 15, defect 2: a role carries its user type. The type is the role's everywhere a user is
made or changes role (lifecycle, add user, the contact card, the API), the roles page sets it,
the migration gives existing roles their users' type, and the import counts licenses per type
from the rows' roles, its dry run agreeing with its run."""

import io
import json
from types import SimpleNamespace

import pytest
from django.apps import apps as django_apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from accounts import lifecycle
from accounts.errors import LifecycleError, NoLicensesLeft
from accounts.models import AuditEvent, Role, User, UserState, UserType
from contacts.models import Contact
from imports import dry_runs, portal_users
from imports.models import ImportJob
from tests.factories import ContactFactory, PortalUserFactory, RoleFactory
from tests.test_import_portal_users import failures_by_line, make_job

# --- lifecycle ---


def test_invite_gives_the_user_the_roles_type(account, customer_role, technician):
    user = lifecycle.invite(account, role=customer_role, by=technician, name="C", email="c@x.io")
    assert user.user_type == UserType.CUSTOMER


def test_a_user_type_that_disagrees_with_the_role_is_refused(account, partner_role, technician):
    with pytest.raises(LifecycleError, match="'Partner User' is a Partner role"):
        lifecycle.invite(
            account,
            role=partner_role,
            user_type=UserType.EMPLOYEE,
            by=technician,
            name="E",
            email="e@x.io",
        )
    assert not User.objects.filter(portal_account=account).exists()


def test_an_employee_role_cannot_be_given_to_a_contact(account, employee_role, technician):
    contact = ContactFactory(portal_account=account)
    with pytest.raises(LifecycleError, match="employees are not CRM contacts"):
        lifecycle.invite(account, role=employee_role, by=technician, contact=contact)
    assert not User.objects.portal_users().exists()


def test_change_role_moves_the_user_to_the_new_roles_type_and_seat(
    account, partner_role, customer_role, technician
):
    user = PortalUserFactory(portal_account=account, role=partner_role)

    lifecycle.change_role(user, customer_role, by=technician)

    user.refresh_from_db()
    assert (user.role, user.user_type) == (customer_role, UserType.CUSTOMER)
    event = AuditEvent.objects.get(action="change_role")
    assert (event.before["user_type"], event.after["user_type"]) == ("partner", "customer")


def test_change_role_to_a_full_type_is_refused_and_changes_nothing(
    account, partner_role, customer_role, technician
):
    account.customer_licenses = 1
    account.save()
    PortalUserFactory(portal_account=account, role=customer_role)
    user = PortalUserFactory(portal_account=account, role=partner_role)

    with pytest.raises(NoLicensesLeft, match="No Customer licenses left: 1 of 1 in use"):
        lifecycle.change_role(user, customer_role, by=technician)

    user.refresh_from_db()
    assert (user.role, user.user_type) == (partner_role, UserType.PARTNER)
    assert not AuditEvent.objects.filter(action="change_role").exists()


def test_a_disabled_user_holds_no_seat_so_its_type_changes_without_one(
    account, partner_role, customer_role, technician
):
    account.customer_licenses = 0
    account.save()
    user = PortalUserFactory(portal_account=account, role=partner_role, state=UserState.DISABLED)

    lifecycle.change_role(user, customer_role, by=technician)

    assert User.objects.get(pk=user.pk).user_type == UserType.CUSTOMER


def test_change_role_across_the_contact_line_is_refused(
    account, partner_role, employee_role, technician
):
    partner = PortalUserFactory(portal_account=account, role=partner_role)
    employee = PortalUserFactory(portal_account=account, role=employee_role)

    with pytest.raises(LifecycleError, match="Pick a partner or customer role"):
        lifecycle.change_role(partner, employee_role, by=technician)
    with pytest.raises(LifecycleError, match="Pick an employee role"):
        lifecycle.change_role(employee, partner_role, by=technician)
    assert User.objects.get(pk=partner.pk).role == partner_role
    assert User.objects.get(pk=employee.pk).role == employee_role


# --- the roles page ---


def roles_url(account):
    return reverse("roles", args=[account.slug])


def role_url(role):
    return reverse("role-edit", args=[role.portal_account.slug, role.pk])


def test_a_role_is_created_with_its_user_type(admin_client, account):
    response = admin_client.post(roles_url(account), {"name": "Buyer", "user_type": "customer"})

    assert response.status_code == 302
    assert Role.objects.get(portal_account=account, name="Buyer").user_type == UserType.CUSTOMER
    page = admin_client.get(roles_url(account)).content.decode()
    assert "Customer" in page


def test_a_role_without_a_user_type_is_refused(admin_client, account):
    response = admin_client.post(roles_url(account), {"name": "Buyer"})
    assert response.status_code == 400
    assert not Role.objects.filter(portal_account=account).exists()


def test_the_type_of_a_role_nobody_has_can_change(admin_client, partner_role):
    response = admin_client.post(
        role_url(partner_role), {"name": "Partner User", "user_type": "customer"}
    )
    assert response.status_code == 302
    assert Role.objects.get(pk=partner_role.pk).user_type == UserType.CUSTOMER
    event = AuditEvent.objects.get(action="change_role_type")
    assert (event.before, event.after["user_type"]) == ({"user_type": "partner"}, "customer")


def test_the_type_of_a_role_with_users_stays_and_says_why(admin_client, account, partner_role):
    PortalUserFactory.create_batch(2, portal_account=account, role=partner_role)

    response = admin_client.post(
        role_url(partner_role), {"name": "Partner Members", "user_type": "customer"}
    )

    assert response.status_code == 400
    page = response.content.decode()
    assert "Users have the role &#x27;Partner User&#x27;, so its user type stays Partner" in page
    assert "Change role on the Users page" in page
    role = Role.objects.get(pk=partner_role.pk)
    assert (role.name, role.user_type) == ("Partner User", UserType.PARTNER)
    assert not AuditEvent.objects.exists()


# --- add user and the users page ---


def add_user(client, account, **data):
    return client.post(reverse("user-add", args=[account.slug]), {"send_invitation": "", **data})


def test_add_user_has_no_type_choice_and_takes_the_roles_type(
    admin_client, account, partner_role, customer_role, employee_role
):
    form = admin_client.get(reverse("user-add", args=[account.slug])).content.decode()
    assert 'name="user_type"' not in form
    assert '<optgroup label="Customer roles">' in form

    add_user(admin_client, account, name="Cy", email="cy@x.io", role=customer_role.pk)
    add_user(admin_client, account, name="Em", email="em@x.io", role=employee_role.pk)
    # A user_type posted by an old page is ignored: the role decides.
    add_user(admin_client, account, name="Pa", email="pa@x.io", role=partner_role.pk)

    users = {u.name: u for u in User.objects.filter(portal_account=account)}
    assert users["Cy"].user_type == UserType.CUSTOMER
    assert users["Cy"].contact is not None
    assert users["Em"].user_type == UserType.EMPLOYEE
    assert users["Em"].contact is None
    assert users["Pa"].user_type == UserType.PARTNER


def test_add_user_refuses_an_employee_role_for_a_contact(admin_client, account, employee_role):
    contact = ContactFactory(portal_account=account)

    response = add_user(admin_client, account, contact_id=contact.contact_id, role=employee_role.pk)

    assert response.status_code == 400
    assert "employees are not CRM contacts" in response.content.decode()
    assert not User.objects.filter(portal_account=account).exists()


def test_change_role_on_the_users_page_offers_the_roles_the_user_can_have(
    admin_client, account, partner_role, customer_role, employee_role
):
    user = PortalUserFactory(portal_account=account, role=partner_role)
    url = reverse("user-action", args=[account.slug, user.pk, "change-role"])

    page = admin_client.get(url).content.decode()
    assert customer_role.name in page
    assert employee_role.name not in page
    assert admin_client.post(url, {"role": employee_role.pk}).status_code == 400
    assert admin_client.post(url, {"role": customer_role.pk}).status_code == 302
    assert User.objects.get(pk=user.pk).user_type == UserType.CUSTOMER


# --- the contact card ---


def card_url(contact, action):
    return reverse("contact-portal-user", args=[contact.portal_account.slug, contact.pk, action])


def test_the_card_enables_a_contact_with_the_roles_type(
    admin_client, account, customer_role, employee_role
):
    contact = ContactFactory(portal_account=account)
    page = admin_client.get(reverse("contact", args=[account.slug, contact.pk])).content.decode()
    assert "User type" not in page.split('id="portal-user-card"')[1].split("</form>")[0]
    assert employee_role.name not in page

    refused = admin_client.post(card_url(contact, "invite"), {"role": employee_role.pk})
    assert refused.status_code == 400
    assert not User.objects.portal_users().exists()

    response = admin_client.post(card_url(contact, "invite"), {"role": customer_role.pk})
    assert response.status_code == 302
    assert User.objects.get(contact=contact).user_type == UserType.CUSTOMER


# --- the API ---


def api_post(client, contact, action, body):
    return client.post(
        reverse(
            f"api-portal-user-{action}",
            kwargs={"slug": contact.portal_account.slug, "contact_ref": contact.contact_id},
        ),
        json.dumps(body),
        content_type="application/json",
    )


def test_the_api_takes_the_type_from_the_role(api_client, account, customer_role):
    contact = ContactFactory(portal_account=account)

    response = api_post(api_client, contact, "enable", {"role": "Customer User"})

    assert response.status_code == 201
    assert response.json()["portal_user"]["user_type"] == "customer"


def test_the_api_refuses_a_user_type_the_role_does_not_have(api_client, account, customer_role):
    contact = ContactFactory(portal_account=account)

    response = api_post(
        api_client, contact, "enable", {"role": "Customer User", "user_type": "partner"}
    )

    assert response.status_code == 400
    body = response.json()
    assert "'Customer User' is a Customer role" in body["error"]
    assert body["errors"][0]["field"] == "user_type"
    assert not User.objects.portal_users().exists()
    agreeing = {"role": "Customer User", "user_type": "customer"}
    assert api_post(api_client, contact, "enable", agreeing).status_code == 201


def test_the_api_role_change_changes_the_type(api_client, account, partner_role, customer_role):
    user = PortalUserFactory(portal_account=account, role=partner_role)

    response = api_post(api_client, user.contact, "change-role", {"role": "Customer User"})

    assert response.status_code == 200
    assert response.json()["portal_user"]["user_type"] == "customer"


def test_the_api_lists_only_roles_a_contact_can_have(
    api_client, account, partner_role, customer_role, employee_role
):
    contact = ContactFactory(portal_account=account)
    response = api_client.get(
        reverse(
            "api-portal-user",
            kwargs={"slug": account.slug, "contact_ref": contact.contact_id},
        )
    )
    assert response.json()["roles"] == ["Customer User", "Partner User"]


def test_the_schema_says_the_role_decides_the_type(client):
    schema = client.get(reverse("api-openapi")).json()
    user_type = schema["components"]["schemas"]["Enable"]["properties"]["user_type"]
    assert "must be the role's type" in json.dumps(user_type)


# --- the migration ---


def _give_roles_types():
    from importlib import import_module

    migration = import_module("accounts.migrations.0015_role_user_type")
    # What the migration's schema editor offers it: the connection, and running a statement
    # (on PostgreSQL it runs the pending foreign-key checks before the ALTER TABLE).
    editor = SimpleNamespace(
        connection=connection, execute=lambda sql: connection.cursor().execute(sql)
    )
    migration.give_roles_types(django_apps, editor)


def test_the_migration_gives_roles_their_users_type_and_splits_mixed_ones(account, capsys):
    mixed = RoleFactory(portal_account=account, name="Member")
    customers_only = RoleFactory(portal_account=account, name="Buyer", user_type="customer")
    unused = RoleFactory(portal_account=account, name="Spare", active=False)
    partners = PortalUserFactory.create_batch(3, portal_account=account, role=mixed)
    # Mixed roles could exist before: the type was chosen apart from the role.
    customers = PortalUserFactory.create_batch(2, portal_account=account, user_type="customer")
    employee = PortalUserFactory(portal_account=account, user_type=UserType.EMPLOYEE)
    User.objects.filter(pk__in=[u.pk for u in [*customers, employee]]).update(role=mixed)
    buyers = PortalUserFactory.create_batch(
        4, portal_account=account, role=customers_only, user_type=UserType.CUSTOMER
    )
    # Before the migration every role was a partner role (its column's default).
    Role.objects.filter(portal_account=account).update(user_type=UserType.PARTNER)
    RoleFactory(portal_account=account, name="Member (Customer)")  # a name already taken

    _give_roles_types()

    roles = {role.name: role for role in Role.objects.filter(portal_account=account)}
    assert roles["Member"].user_type == UserType.PARTNER  # most of its users
    assert roles["Buyer"].user_type == UserType.CUSTOMER
    split_customer, split_employee = roles["Member (Customer) 2"], roles["Member (Employee)"]
    assert (split_customer.user_type, split_employee.user_type) == ("customer", "employee")
    assert {u.role for u in User.objects.filter(pk__in=[u.pk for u in partners])} == {mixed}
    assert {u.role for u in User.objects.filter(pk__in=[u.pk for u in customers])} == {
        split_customer
    }
    assert User.objects.get(pk=employee.pk).role == split_employee
    assert {u.role for u in User.objects.filter(pk__in=[u.pk for u in buyers])} == {customers_only}
    # Every user now has their role's type.
    assert not [
        u for u in User.objects.filter(portal_account=account) if u.user_type != u.role.user_type
    ]
    # A role without users: its account's most common type (3 partners, 6 customers).
    assert Role.objects.get(pk=unused.pk).user_type == UserType.CUSTOMER
    printed = capsys.readouterr().out
    assert "Role 'Member'" in printed
    assert "'Member (Customer) 2'" in printed
    assert "Role 'Spare'" in printed
    assert "has no users" in printed
    assert AuditEvent.objects.filter(action="split_role", portal_account=account).count() == 2
    assert Contact.objects.count() >= 9  # nothing but roles and their users' role changed


# --- the import ---


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def _csv(rows):
    lines = ["ContactId,Role", *(f"{contact.contact_id},{role}" for contact, role in rows)]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def seven_rows(account, partner_role, customer_role):
    """A file of 2 Customer User rows and 5 Partner User rows."""
    contacts = [ContactFactory(portal_account=account) for _ in range(7)]
    roles = ["Customer User"] * 2 + ["Partner User"] * 5
    return contacts, _csv(zip(contacts, roles, strict=True))


def test_a_file_of_2_customers_and_5_partners_needs_and_creates_exactly_that(
    account, seven_rows, technician
):
    account.partner_licenses, account.customer_licenses = 6, 3
    account.save()
    contacts, content = seven_rows
    with io.BytesIO(content) as source:
        report = portal_users.validate(source, account)
    assert report.licenses == {
        "customer": {"needed": 2, "free": 3},
        "partner": {"needed": 5, "free": 6},
    }
    assert [line["label"] for line in report.license_lines] == ["Partner", "Customer"]
    assert report.would_create == 7

    job = make_job(account, content=content)
    portal_users.apply(job)
    job.refresh_from_db()

    assert (job.created, job.failed) == (7, 0)
    created = User.objects.filter(portal_account=account)
    assert sorted(created.values_list("user_type", flat=True)) == ["customer"] * 2 + ["partner"] * 5


def test_the_command_reports_licenses_per_type(account, seven_rows, tmp_path):
    path = tmp_path / "seven.csv"
    path.write_bytes(seven_rows[1])
    out = io.StringIO()
    call_command("import_portal_users", account.slug, str(path), "--dry-run", stdout=out)

    assert "Partner licenses: 5 needed, 10 free: enough." in out.getvalue()
    assert "Customer licenses: 2 needed, 10 free: enough." in out.getvalue()


def _wizard_file(account, partner_role, customer_role, employee_role):
    """Rows the options treat differently: customers past their licenses, an employee role,
    a contact without an email (refused only with activation emails), plain partners."""
    account.customer_licenses = 1
    account.save()
    partners = [ContactFactory(portal_account=account) for _ in range(3)]
    customers = [ContactFactory(portal_account=account) for _ in range(2)]
    no_email = ContactFactory(portal_account=account, email="")
    staff = ContactFactory(portal_account=account)
    rows = [(c, "Partner User") for c in partners] + [(c, "Customer User") for c in customers]
    rows += [(no_email, "Partner User"), (staff, employee_role.name)]
    return _csv(rows)


@pytest.mark.parametrize("send_activation", ["", "1"])
def test_the_wizards_dry_run_and_run_agree_for_every_option(
    admin_client,
    account,
    partner_role,
    customer_role,
    employee_role,
    send_activation,
    django_capture_on_commit_callbacks,
):
    content = _wizard_file(account, partner_role, customer_role, employee_role)
    upload = SimpleUploadedFile("mixed.csv", content, content_type="text/csv")
    new = admin_client.post(reverse("import-new", args=[account.slug]), {"file": upload})
    assert new.status_code == 302
    form = admin_client.get(reverse("import-new", args=[account.slug])).content.decode()
    assert 'name="user_type"' not in form
    job = ImportJob.objects.get(portal_account=account)
    mapped = {"contact_id": "0", "role": "1"}
    admin_client.post(reverse("import-map", args=[account.slug, job.pk]), mapped)
    review = admin_client.get(
        reverse("import-review", args=[account.slug, job.pk]),
        {"checked": "1", "send_activation": send_activation},
    ).content.decode()
    job.refresh_from_db()
    report = dry_runs.report(job)
    assert "Customer licenses: 2 needed but only 1 free" in review
    assert f"Partner licenses: {3 if send_activation else 4} needed, 10 free: enough." in review

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            reverse("import-start", args=[account.slug, job.pk]),
            {"send_activation": send_activation},
        )
    job.refresh_from_db()

    assert job.created == report.would_create == (4 if send_activation else 5)
    assert job.failed == report.failed
    run_codes = {}
    for row in failures_by_line(job).values():
        run_codes[row[3]] = run_codes.get(row[3], 0) + 1
    assert run_codes == {code: entry["count"] for code, entry in report.failures.items()}
    assert "employee_role" in run_codes
    assert User.objects.filter(portal_account=account, user_type="customer").count() == 1
    assert not User.objects.filter(portal_account=account, user_type="employee").exists()


def test_a_dry_run_kept_from_before_role_types_still_shows(account):
    """A review page saved with the old single-type report (user_type, licenses_needed,
    licenses_free) is read without them instead of failing."""
    job = make_job(account, content=b"ContactId,Role\n")
    job.dry_run = {
        "state": dry_runs.DONE,
        "report": {"total_rows": 3, "would_create": 3, "user_type": "employee"}
        | {"licenses_needed": 3, "licenses_free": 5},
    }
    job.save()

    report = dry_runs.report(job)

    assert (report.total_rows, report.would_create, report.licenses) == (3, 3, {})
