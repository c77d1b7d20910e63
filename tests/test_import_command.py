"""manage.py import_portal_users: the same import from a terminal (exit codes and output)."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import AuditEvent, User, UserState
from imports.models import ImportJob
from tests.samples import sample_path


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def world(sample_world):
    return sample_world


def new_users(account):
    return User.objects.filter(portal_account=account, state=UserState.UNCONFIRMED)


def import_file(*args, **options):
    from io import StringIO

    out, err = StringIO(), StringIO()
    call_command("import_portal_users", *args, stdout=out, stderr=err, **options)
    return out.getvalue()


def test_import_prints_progress_summary_and_result_files(world, technician):
    output = import_file(
        "acme", str(sample_path("portal-users-mixed.csv")), "--as", technician.email
    )

    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.DONE
    assert job.started_by == technician
    assert "15 / 15 rows (" in output
    assert "15 rows, 7 created, 8 failed." in output
    assert "Contact not found (contact_not_found): 2" in output
    assert f"Success file: {job.success_file.path}" in output
    assert f"Failure file: {job.failure_file.path}" in output
    assert new_users(world).count() == 7
    assert AuditEvent.objects.filter(action="invite", actor=technician).count() == 7


def test_progress_line_per_batch_when_not_a_terminal(world):
    output = import_file("acme", str(sample_path("portal-users-template.csv")), "--batch-size", "1")

    assert "1 / 2 rows (" in output
    assert "2 / 2 rows (" in output
    assert "\r" not in output


def test_send_activation_and_each_user_of_its_roles_type(world):
    import_file("acme", str(sample_path("portal-users-template.csv")), "--send-activation")

    users = new_users(world)
    assert {(user.role.name, user.user_type) for user in users} == {
        ("Partner User", "partner"),
        ("Customer User", "customer"),
    }
    assert all(user.last_invited_at for user in users)


def test_there_is_no_user_type_option(world):
    with pytest.raises(CommandError, match="unrecognized arguments: --user-type"):
        import_file(
            "acme", str(sample_path("portal-users-template.csv")), "--user-type", "customer"
        )
    assert not new_users(world)


def test_dry_run_prints_the_report_and_writes_nothing(world):
    output = import_file("acme", str(sample_path("portal-users-mixed.csv")), "--dry-run")

    assert "Dry run: nothing was changed." in output
    assert "15 rows: 7 would be created, 8 would fail." in output
    # Per type, from the rows' roles: 5 Partner User rows and 2 Customer User rows pass.
    assert "Partner licenses: 5 needed, 49 free: enough." in output
    assert "Customer licenses: 2 needed, 50 free: enough." in output
    assert "line 5: 003v5UTG79BG16QmtsL, partner user: No role named 'partner user'." in output
    assert "Did you mean 'Partner User'?" in output
    assert not new_users(world).exists()
    assert not ImportJob.objects.exists()


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("bad-empty.csv", "The file is empty."),
        ("bad-no-role-column.csv", "No Role column."),
        ("bad-xlsx-renamed.csv", "Excel workbook"),
    ],
)
@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
def test_bad_file_is_a_plain_error_with_exit_code_2(world, name, words, dry_run):
    args = ["acme", str(sample_path(name))] + (["--dry-run"] if dry_run else [])

    with pytest.raises(CommandError) as raised:
        import_file(*args)

    assert raised.value.returncode == 2
    assert words in str(raised.value)
    assert not new_users(world).exists()


def test_exit_code_and_stderr_from_the_command_line(world, capsys):
    from django.core.management import ManagementUtility

    utility = ManagementUtility(
        ["manage.py", "import_portal_users", "acme", str(sample_path("bad-empty.csv"))]
    )
    with pytest.raises(SystemExit) as exited:
        utility.execute()

    assert exited.value.code == 2
    assert "The file is empty." in capsys.readouterr().err


def test_unknown_account_and_importer(world):
    with pytest.raises(CommandError, match="No portal account with the slug 'nope'"):
        import_file("nope", str(sample_path("portal-users-template.csv")))
    with pytest.raises(CommandError, match="with the email ghost@example.com"):
        import_file(
            "acme", str(sample_path("portal-users-template.csv")), "--as", "ghost@example.com"
        )
