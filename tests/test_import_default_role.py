"""The portal-user import's role for rows without one: a file without a Role column, or a row
whose Role cell is empty, gets the role chosen in the wizard (Map columns step) or with
`manage.py import_portal_users --role NAME`. The user type follows that role, the dry run
counts its licenses, and the run does what the dry run said."""

import csv
import io
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from accounts.models import Role, User, UserState, UserType
from imports import portal_users
from imports.models import ImportJob
from tests.factories import PortalAccountFactory
from tests.samples import sample_path

ADA, GRACE, ALAN, EDSGER = (
    "003iK2ZWeqhFWCEPyYn",
    "003CrUZoL8g5ubbbPIa",
    "0038FJowoRoWD8s7bA1",
    "003v5UTG79BG16QmtsL",
)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def world(sample_world):
    return sample_world


@pytest.fixture
def customer_role(world):
    return Role.objects.get(portal_account=world, name="Customer User")


def url(name, account, *args):
    return reverse(name, args=[account.slug, *args])


def new_users(account):
    return User.objects.filter(portal_account=account, state=UserState.UNCONFIRMED)


def upload(client, account, text, name="users.csv"):
    file = SimpleUploadedFile(name, text.encode(), content_type="text/csv")
    response = client.post(url("import-new", account), {"file": file})
    assert response.status_code == 302, response.content.decode()[:2000]
    return ImportJob.objects.filter(portal_account=account).latest("pk")


def start(client, account, job, capture):
    with capture(execute=True):
        response = client.post(url("import-start", account, job.pk))
    assert response.status_code == 302
    job.refresh_from_db()
    return job


def download_rows(client, account, job, which):
    response = client.get(url("import-download", account, job.pk, which))
    assert response.status_code == 200
    data = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(data, newline="")))


def test_a_file_without_a_role_column_takes_the_chosen_role_its_type_and_licenses(
    technician_client, world, customer_role, django_capture_on_commit_callbacks
):
    client = technician_client
    world.customer_licenses = 2  # three rows, two customer seats: the dry run and run agree
    world.save()
    job = upload(client, world, f"ContactId\n{ADA}\n{GRACE}\n{ALAN}\n")
    page = client.get(url("import-map", world, job.pk)).content.decode()
    assert "Role for rows without one" in page
    assert "Customer roles" in page
    assert "Partner roles" in page

    response = client.post(
        url("import-map", world, job.pk),
        {"contact_id": "0", "role": "", "default_role": str(customer_role.pk)},
    )

    assert response.status_code == 302
    assert response["Location"] == url("import-review", world, job.pk)
    job.refresh_from_db()
    assert job.options["default_role"] == customer_role.pk
    review = client.get(url("import-review", world, job.pk)).content.decode()
    assert "Rows without a role get <strong>Customer User</strong> (Customer)" in review
    assert "2 will be created</strong>, 1 will fail" in review
    assert "Customer licenses: 3 needed but only 2 free" in review
    assert "Partner licenses" not in review  # no row is a partner
    assert "(empty: Customer User)</td>" in review  # the failing row's example
    job.refresh_from_db()
    report = portal_users.ValidationReport(**job.dry_run["report"])

    job = start(client, world, job, django_capture_on_commit_callbacks)

    assert job.status == ImportJob.Status.DONE
    assert (job.created, job.failed) == (report.would_create, report.failed) == (2, 1)
    users = new_users(world)
    assert {(u.role.name, u.user_type) for u in users} == {("Customer User", UserType.CUSTOMER)}
    assert sorted(u.contact.contact_id for u in users) == [GRACE, ADA]
    header, *created = download_rows(client, world, job, "success")
    assert [row[:2] for row in created] == [[ADA, "Customer User"], [GRACE, "Customer User"]]
    failures = download_rows(client, world, job, "failure")
    assert failures[1][1:4] == [ALAN, "", portal_users.NO_LICENSES]


def test_rows_with_an_empty_role_cell_take_it_and_the_others_keep_theirs(
    technician_client, world, customer_role, django_capture_on_commit_callbacks
):
    client = technician_client
    job = upload(
        client, world, f"ContactId,Role\n{ADA},Partner User\n{GRACE},\n{ALAN},  \n{EDSGER},Nope\n"
    )
    client.post(
        url("import-map", world, job.pk),
        {"contact_id": "0", "role": "1", "default_role": str(customer_role.pk)},
    )

    review = client.get(url("import-review", world, job.pk)).content.decode()

    assert "3 will be created</strong>, 1 will fail" in review
    assert "Partner licenses: 1 needed" in review
    assert "Customer licenses: 2 needed" in review
    assert "No role named &#x27;Nope&#x27;" in review  # a named role is never replaced
    job = start(client, world, job, django_capture_on_commit_callbacks)
    assert (job.created, job.failed) == (3, 1)
    types = {u.contact.contact_id: (u.role.name, u.user_type) for u in new_users(world)}
    assert types == {
        ADA: ("Partner User", UserType.PARTNER),
        GRACE: ("Customer User", UserType.CUSTOMER),
        ALAN: ("Customer User", UserType.CUSTOMER),
    }


def test_without_a_role_column_or_a_chosen_role_the_map_step_says_what_to_do(
    technician_client, world
):
    job = upload(technician_client, world, f"ContactId\n{ADA}\n")

    response = technician_client.post(
        url("import-map", world, job.pk), {"contact_id": "0", "role": "", "default_role": ""}
    )

    assert response.status_code == 400
    page = response.content.decode()
    assert "No Role column" in page
    assert "choose the role for rows without one" in page
    job.refresh_from_db()
    assert job.status == ImportJob.Status.UPLOADED


def test_only_active_partner_and_customer_roles_can_be_chosen(technician_client, world):
    employee = Role.objects.create(portal_account=world, name="Staff", user_type="employee")
    inactive = Role.objects.get(portal_account=world, name="Reseller")
    other = Role.objects.create(
        portal_account=PortalAccountFactory(),
        name="Elsewhere",
        user_type="customer",
    )
    job = upload(technician_client, world, f"ContactId\n{ADA}\n")
    page = technician_client.get(url("import-map", world, job.pk)).content.decode()
    for name in ("Staff", "Reseller", "Elsewhere"):
        assert f">{name}<" not in page

    for role in (employee, inactive, other):
        response = technician_client.post(
            url("import-map", world, job.pk),
            {"contact_id": "0", "role": "", "default_role": str(role.pk)},
        )
        assert response.status_code == 400, role.name
        assert "Pick an active partner or customer role" in response.content.decode()
    job.refresh_from_db()
    assert job.status == ImportJob.Status.UPLOADED
    assert "default_role" not in job.options


def test_choosing_another_role_checks_the_file_again(
    technician_client, world, customer_role, django_capture_on_commit_callbacks
):
    client = technician_client
    partner_role = Role.objects.get(portal_account=world, name="Partner User")
    job = upload(client, world, f"ContactId\n{ADA}\n{GRACE}\n")
    client.post(
        url("import-map", world, job.pk),
        {"contact_id": "0", "default_role": str(customer_role.pk)},
    )
    assert (
        "Customer licenses: 2 needed"
        in client.get(url("import-review", world, job.pk)).content.decode()
    )

    client.post(
        url("import-map", world, job.pk),
        {"contact_id": "0", "default_role": str(partner_role.pk)},
    )

    review = client.get(url("import-review", world, job.pk)).content.decode()
    assert "Partner licenses: 2 needed" in review
    assert "Customer licenses" not in review
    job = start(client, world, job, django_capture_on_commit_callbacks)
    assert {u.user_type for u in new_users(world)} == {UserType.PARTNER}


def test_a_role_deactivated_after_the_review_fails_its_rows_with_a_reason(
    technician_client, world, customer_role, django_capture_on_commit_callbacks
):
    job = upload(technician_client, world, f"ContactId\n{ADA}\n")
    technician_client.post(
        url("import-map", world, job.pk),
        {"contact_id": "0", "default_role": str(customer_role.pk)},
    )
    technician_client.get(url("import-review", world, job.pk))
    Role.objects.filter(pk=customer_role.pk).update(active=False)

    job = start(technician_client, world, job, django_capture_on_commit_callbacks)

    assert (job.created, job.failed) == (0, 1)
    row = download_rows(technician_client, world, job, "failure")[1]
    assert row[3] == portal_users.ROLE_INACTIVE
    assert "The role chosen for rows without one, 'Customer User', is inactive" in row[4]


# The command line: --role NAME.


def import_file(*args):
    out = StringIO()
    call_command("import_portal_users", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_the_command_gives_rows_without_a_role_the_role_named(world):
    path = str(sample_path("bad-no-role-column.csv"))  # ContactId,Name: Ada, no Role column

    output = import_file("acme", path, "--role", "Customer User", "--dry-run")
    assert "1 rows: 1 would be created, 0 would fail." in output
    assert "Customer licenses: 1 needed, 50 free: enough." in output
    assert not new_users(world).exists()

    import_file("acme", path, "--role", "Customer User")
    user = new_users(world).get()
    assert (user.role.name, user.user_type) == ("Customer User", UserType.CUSTOMER)
    assert ImportJob.objects.get().options["default_role"] == user.role_id


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("customer user", "Did you mean 'Customer User'?"),
        ("Reseller", "is inactive"),
        ("Staff", "is an Employee role"),
    ],
)
def test_the_command_refuses_a_role_it_cannot_give(world, name, words):
    Role.objects.create(portal_account=world, name="Staff", user_type="employee")

    with pytest.raises(CommandError, match=words):
        import_file("acme", str(sample_path("bad-no-role-column.csv")), "--role", name)

    assert not new_users(world).exists()
    assert not ImportJob.objects.exists()
