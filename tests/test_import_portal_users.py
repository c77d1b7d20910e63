"""Validate and apply stages of the portal-user CSV import (imports.portal_users), driven through
the model API on the shared sample world (shared/samples: contacts.csv, roles.csv) so every
sample file gives what its README row says."""

import csv
import io

import pytest
from django.core.files.base import ContentFile

from accounts.models import AuditEvent, OutboxEmail, Role, User, UserState, UserType
from contacts.models import Contact
from imports import portal_users
from imports.column_mapping import MappingError
from imports.csv_reader import CsvError
from imports.models import ImportJob
from tests.factories import PortalAccountFactory
from tests.samples import sample_path, sample_rows

TEMPLATE_LIKE = [
    "portal-users-template.csv",
    "portal-users-bom-crlf.csv",
    "portal-users-semicolon.csv",
    "portal-users-quoted.csv",
]
BAD_FILES = {
    "bad-empty.csv": (CsvError, "empty"),
    "bad-header-only.csv": (CsvError, "no rows"),
    "bad-no-role-column.csv": (MappingError, "No Role column"),
    "bad-duplicate-header.csv": (CsvError, "appears twice"),
    "bad-xlsx-renamed.csv": (CsvError, "Excel workbook"),
}
# The mixed sample's Expect column, as reason codes.
EXPECTED_FAILURES = {
    "failed: role not found": portal_users.ROLE_NOT_FOUND,
    "failed: role missing": portal_users.ROLE_MISSING,
    "failed: User already exists": portal_users.USER_EXISTS,
    "failed: contact not found (deleted)": portal_users.CONTACT_NOT_FOUND,
    "failed: role inactive": portal_users.ROLE_INACTIVE,
    "failed: contact id missing": portal_users.MISSING_CONTACT_ID,
    "failed: contact not found": portal_users.CONTACT_NOT_FOUND,
    "failed: duplicate row in file": portal_users.DUPLICATE_ROW,
}
ACTIVATION_ONLY = "failed when activation email is on"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def world(sample_world):
    return sample_world


def make_job(account, name=None, *, content=None, **options):
    data = content if content is not None else sample_path(name).read_bytes()
    job = ImportJob(
        portal_account=account,
        original_filename=name or "upload.csv",
        options={"send_activation": False, **options},
    )
    job.source_file.save(name or "upload.csv", ContentFile(data), save=False)
    job.save()
    return job


def run(account, name=None, **kwargs):
    job = make_job(account, name, **kwargs)
    portal_users.apply(job)
    job.refresh_from_db()
    return job


def result_rows(fieldfile):
    with fieldfile.open("rb") as binary:
        data = binary.read()
    assert data.startswith(b"\xef\xbb\xbf"), "result files start with a UTF-8 byte-order mark"
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def failures_by_line(job):
    header, *rows = result_rows(job.failure_file)
    assert header == ["Line", "ContactId", "Role", "ReasonCode", "Reason"]
    return {int(row[0]): row for row in rows}


def new_users(account):
    return User.objects.filter(portal_account=account, state=UserState.UNCONFIRMED)


@pytest.mark.parametrize("name", TEMPLATE_LIKE)
def test_template_like_files_create_two_users(world, name):
    job = run(world, name)

    assert job.status == ImportJob.Status.DONE
    assert (job.total_rows, job.created, job.failed, job.processed) == (2, 2, 0, 2)
    users = new_users(world).select_related("contact")
    assert {user.contact.contact_id for user in users} == {
        "003iK2ZWeqhFWCEPyYn",
        "003CrUZoL8g5ubbbPIa",
    }
    header, *rows = result_rows(job.success_file)
    assert header == ["ContactId", "Role", "UserId"]
    assert sorted(int(row[2]) for row in rows) == sorted(user.pk for user in users)
    assert result_rows(job.failure_file) == [["Line", "ContactId", "Role", "ReasonCode", "Reason"]]
    # The batch's users (COPY on PostgreSQL) carry their contacts' CRM account for the filter.
    copies = {user.crm_account_name for user in users}
    assert copies == {user.contact.crm_account_name for user in users}
    assert "" not in copies


def test_template_invites_silently_with_audit_and_no_email(world):
    job = run(world, "portal-users-template.csv")

    users = new_users(world)
    assert {(user.role.name, user.user_type) for user in users} == {
        ("Partner User", UserType.PARTNER),
        ("Customer User", UserType.CUSTOMER),
    }
    assert AuditEvent.objects.filter(action="invite", subject_user__in=users).count() == 2
    assert not OutboxEmail.objects.exists()
    assert job.created == 2


def test_send_activation_queues_invitations(world):
    run(world, "portal-users-template.csv", send_activation=True)

    assert OutboxEmail.objects.filter(user__in=new_users(world)).count() == 2


def test_a_user_type_left_on_an_older_job_is_ignored_the_roles_decide(world):
    run(world, "portal-users-template.csv", user_type="employee")

    assert {user.user_type for user in new_users(world)} == {UserType.PARTNER, UserType.CUSTOMER}


def _mixed_expectations(activation):
    expected = {}
    for line, row in enumerate(sample_rows("portal-users-mixed.csv"), start=2):
        outcome = row["Expect"]
        if outcome.startswith("created"):
            if activation and ACTIVATION_ONLY in outcome:
                expected[line] = portal_users.NO_VALID_EMAIL
            else:
                expected[line] = "created"
        else:
            code = next(
                code for prefix, code in EXPECTED_FAILURES.items() if outcome.startswith(prefix)
            )
            expected[line] = code
    return expected


@pytest.mark.parametrize("activation", [False, True], ids=["no-email", "activation-email"])
def test_mixed_file_gives_each_rows_expected_outcome(world, activation):
    expected = _mixed_expectations(activation)
    job = run(world, "portal-users-mixed.csv", send_activation=activation)

    failures = failures_by_line(job)
    outcomes = {line: failures[line][3] if line in failures else "created" for line in expected}
    assert outcomes == expected
    created = sum(1 for outcome in expected.values() if outcome == "created")
    assert (job.created, job.failed, job.total_rows) == (created, len(expected) - created, 15)
    assert new_users(world).count() == created
    assert "Did you mean 'Partner User'?" in failures[5][4]
    assert "deleted in the CRM" in failures[8][4]
    assert failures[14][1:3] == ["003iK2ZWeqhFWCEPyYn", "Partner User"]
    # Salesforce ids (15 converted with the checksum, 18 as is) find their contacts.
    assert User.objects.filter(contact__salesforce_id="00384yRnBUbHoWCA00").exists()
    assert User.objects.filter(contact__salesforce_id="0036J7PglOU3shVQSR").exists()
    if activation:
        assert "no valid email" in failures[9][4]


def test_mixed_dry_run_reports_the_same_outcomes_and_writes_nothing(world):
    expected = _mixed_expectations(activation=False)
    users_before = User.objects.count()

    with sample_path("portal-users-mixed.csv").open("rb") as source:
        report = portal_users.validate(source, world, None, {"send_activation": False})

    assert User.objects.count() == users_before
    assert not AuditEvent.objects.exists()
    codes = {}
    for outcome in expected.values():
        if outcome != "created":
            codes[outcome] = codes.get(outcome, 0) + 1
    assert {code: entry["count"] for code, entry in report.failures.items()} == codes
    assert report.would_create == sum(1 for o in expected.values() if o == "created")
    assert report.total_rows == 15
    assert report.licenses_suffice
    examples = report.failures[portal_users.CONTACT_NOT_FOUND]["examples"]
    assert [example["line"] for example in examples] == [8, 13]


def test_dry_run_on_a_job_changes_no_users(world):
    job = make_job(world, "portal-users-template.csv")

    report = portal_users.validate(job, world, None, job.options)

    job.refresh_from_db()
    assert report.would_create == 2
    assert job.status == ImportJob.Status.VALIDATED
    assert job.total_rows == 2
    assert not new_users(world).exists()


def test_cp1252_file_imports_with_the_right_names(world):
    job = run(world, "portal-users-cp1252.csv")

    assert job.created == 2
    names = set(new_users(world).values_list("name", flat=True))
    assert names == {"Ada Lovelace", "Zoë Ångström"}


def test_odd_header_is_auto_mapped_and_email_ignored(world):
    job = run(world, "portal-users-odd-header.csv")

    assert job.created == 1
    assert job.column_mapping == {"contact_id": 0, "role": 1}
    user = new_users(world).get()
    assert user.email == "ada@example.com"  # from the contact, not the file's Email column


def test_formula_rows_fail_and_the_failure_file_is_neutralised(world):
    job = run(world, "portal-users-formula.csv")

    assert (job.created, job.failed) == (0, 2)
    failures = failures_by_line(job)
    assert failures[2][1] == '\'=HYPERLINK("http://evil.example","x")'
    assert failures[2][3] == portal_users.CONTACT_NOT_FOUND
    assert failures[3][2] == "'@SUM(A1)"
    assert failures[3][3] == portal_users.ROLE_NOT_FOUND
    for row in failures.values():
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@")), cell


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_say_what_is_wrong_and_import_nothing(world, name):
    error_class, words = BAD_FILES[name]
    job = make_job(world, name)

    with pytest.raises(error_class) as raised:
        portal_users.validate(job, world, None, job.options)
    with pytest.raises(error_class):
        portal_users.apply(job)

    assert words in str(raised.value)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED
    assert words in job.error_message
    assert not new_users(world).exists()


def test_trailing_blank_lines_are_not_rows(world):
    job = run(world, "bad-trailing-blank-lines.csv")

    assert (job.total_rows, job.created, job.failed) == (1, 1, 0)


def _generated_file(contacts, role="Partner User"):
    lines = ["ContactId,Role"] + [f"{contact.contact_id},{role}" for contact in contacts]
    return ("\n".join(lines) + "\n").encode()


def test_licenses_running_out_fail_the_rest_and_keep_earlier_rows(db):
    account = PortalAccountFactory(partner_licenses=3)
    Role.objects.create(portal_account=account, name="Partner User", user_type="partner")
    contacts = [
        Contact.objects.create(portal_account=account, name=f"P {i}", email=f"p{i}@example.com")
        for i in range(5)
    ]
    content = _generated_file(contacts)

    with io.BytesIO(content) as source:
        report = portal_users.validate(source, account)
    assert report.licenses == {"partner": {"needed": 5, "free": 3}}
    assert not report.licenses_suffice
    assert report.would_create == 3
    job = run(account, content=content)

    assert (job.created, job.failed) == (3, 2)
    failures = failures_by_line(job)
    assert sorted(failures) == [5, 6]
    assert {row[3] for row in failures.values()} == {portal_users.NO_LICENSES}
    assert "No Partner licenses left: 3 of 3 in use." in failures[5][4]
    assert set(User.objects.filter(portal_account=account).values_list("contact", flat=True)) == {
        contact.pk for contact in contacts[:3]
    }


class Crash(Exception):
    pass


def test_a_crashed_run_resumes_without_creating_anyone_twice(db):
    account = PortalAccountFactory(partner_licenses=20)
    Role.objects.create(portal_account=account, name="Partner User", user_type="partner")
    contacts = [
        Contact.objects.create(portal_account=account, name=f"P {i}", email=f"p{i}@example.com")
        for i in range(5)
    ]
    # Line 7 repeats line 2's contact: the duplicate rule must survive the restart.
    content = _generated_file([*contacts, contacts[0]])
    job = make_job(account, content=content)

    def crash_after_first_batch(job):
        raise Crash

    with pytest.raises(Crash):
        portal_users.apply(job, batch_size=2, progress=crash_after_first_batch)
    job.refresh_from_db()
    assert (job.processed, job.created, job.last_processed_line) == (2, 2, 3)
    assert job.status == ImportJob.Status.FAILED

    portal_users.apply(job, batch_size=2)

    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE
    assert (job.total_rows, job.processed, job.created, job.failed) == (6, 6, 5, 1)
    assert User.objects.filter(portal_account=account).count() == 5
    assert AuditEvent.objects.filter(action="invite").count() == 5
    header, *created = result_rows(job.success_file)
    assert [row[0] for row in created] == [contact.contact_id for contact in contacts]
    failures = failures_by_line(job)
    assert list(failures) == [7]
    assert failures[7][3] == portal_users.DUPLICATE_ROW


def test_a_rerun_after_a_crash_mid_batch_is_stopped_by_the_existing_user(db):
    """Rows whose progress was lost (say the save of the counts never committed) meet the users
    they created and fail "User already exists": nobody is created twice."""
    account = PortalAccountFactory(partner_licenses=20)
    Role.objects.create(portal_account=account, name="Partner User", user_type="partner")
    contacts = [
        Contact.objects.create(portal_account=account, name=f"P {i}", email=f"p{i}@example.com")
        for i in range(2)
    ]
    job = run(account, content=_generated_file(contacts))
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJob.Status.RUNNING,
        last_processed_line=0,
        processed=0,
        created=0,
        failed=0,
        success_file_bytes=0,
        failure_file_bytes=0,
    )

    portal_users.apply(job)

    job.refresh_from_db()
    assert (job.created, job.failed) == (0, 2)
    assert User.objects.filter(portal_account=account).count() == 2
    assert {row[3] for row in failures_by_line(job).values()} == {portal_users.USER_EXISTS}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_cancel_during_a_batch_rolls_that_batch_back(monkeypatch):
    """The cancel commits (another request, another connection) while a batch is in flight: the
    batch's conditional progress save sees it, the batch rolls back and the job stays
    cancelled; the batch committed before stays."""
    import threading

    from django.db import connection

    from accounts import bulk_invites
    from imports.pipeline import Cancelled

    account = PortalAccountFactory(partner_licenses=20)
    Role.objects.create(portal_account=account, name="Partner User", user_type="partner")
    contacts = [
        Contact.objects.create(portal_account=account, name=f"P {i}", email=f"p{i}@example.com")
        for i in range(4)
    ]
    job = make_job(account, content=_generated_file(contacts))
    invite_many = bulk_invites.invite_many
    calls = []

    def cancel_from_another_request():
        ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.CANCELLED)
        connection.close()

    def invite_many_cancelled_during_the_second_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            other = threading.Thread(target=cancel_from_another_request)
            other.start()
            other.join(10)
        return invite_many(*args, **kwargs)

    monkeypatch.setattr(bulk_invites, "invite_many", invite_many_cancelled_during_the_second_batch)
    with pytest.raises(Cancelled):
        portal_users.apply(job, batch_size=2)

    job.refresh_from_db()
    assert job.status == ImportJob.Status.CANCELLED
    assert (job.processed, job.created, job.last_processed_line) == (2, 2, 3)
    assert set(User.objects.filter(portal_account=account).values_list("contact", flat=True)) == {
        contact.pk for contact in contacts[:2]
    }
    assert AuditEvent.objects.filter(action="invite").count() == 2


def test_first_lines_remembers_the_first_line_of_each_contact_like_a_dict():
    """The compact map behind the duplicate rule (a million-row file must not need 100 MB)."""
    import random

    from imports.first_lines import FirstLines

    rng = random.Random(6)
    ids = [rng.randrange(10**12) for _ in range(3_000)] + list(range(5_000))  # grows twice
    first_lines, expected = FirstLines(), {}
    for line, contact_pk in enumerate(ids + ids[::3], start=2):
        assert first_lines.setdefault(contact_pk, line) == expected.setdefault(contact_pk, line)
    assert len(first_lines) == len(expected)
    assert all(first_lines.get(pk) == line for pk, line in expected.items())
    assert 10**13 not in first_lines
    assert first_lines.get(10**13, "none") == "none"
