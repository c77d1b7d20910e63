"""The contacts target of the CSV import (imports.contacts_import): upsert into the CRM mirror by
contact id or Salesforce id, through the model API, the wizard and `manage.py import_contacts`,
on the shared sample contacts.csv (its extra columns `deleted` and `has_user` are ignored)."""

import csv
import io
from datetime import UTC, datetime

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.urls import reverse

from accounts.models import AuditEvent
from contacts.models import Contact
from contacts.salesforce_ids import to_18
from imports import contacts_import
from imports.column_mapping import CONTACT_FIELDS, auto_map
from imports.models import ImportJob
from tests.factories import PortalAccountFactory
from tests.samples import load_world, sample_path

SAMPLE = "contacts.csv"
MARGARET = "003Ll3fZJZ207qc18Re"  # the sample's invalid email
KEN = "0033xKJm8GAF0wAwaII"  # the sample's empty email
ZOE = "0032et68tVkAKqiaJ42"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def empty(db):
    return PortalAccountFactory(name="Empty Portal", slug="empty")


def sample_rows():
    with sample_path(SAMPLE).open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


def make_job(account, name=SAMPLE, *, content=None):
    data = content if content is not None else sample_path(name).read_bytes()
    job = ImportJob(
        portal_account=account, target=ImportJob.Target.CONTACTS, original_filename=name
    )
    job.source_file.save(name, ContentFile(data), save=False)
    job.save()
    return job


def run(account, name=SAMPLE, *, content=None, **kwargs):
    job = make_job(account, name, content=content)
    contacts_import.apply(job, **kwargs)
    job.refresh_from_db()
    return job


def result_rows(fieldfile):
    with fieldfile.open("rb") as binary:
        data = binary.read()
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def csv_bytes(*lines):
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def test_snake_case_sample_headers_are_auto_mapped():
    header = ["contact_id", "salesforce_id", "name", "email", "crm_account", "deleted", "has_user"]
    assert auto_map(header, CONTACT_FIELDS) == {
        "contact_id": 0,
        "salesforce_id": 1,
        "name": 2,
        "email": 3,
        "crm_account": 4,
    }


def test_sample_fills_an_empty_account(empty):
    job = run(empty)

    assert job.status == ImportJob.Status.DONE
    # Every row is created except Margaret Hamilton's invalid email, which fails so the file
    # gets fixed; Ken Thompson's empty email is allowed (stored as "").
    assert (job.total_rows, job.created, job.failed) == (13, 12, 1)
    assert contacts_import.updated_count(job) == 0
    contacts = {c.contact_id: c for c in Contact.objects.filter(portal_account=empty)}
    assert len(contacts) == 12
    assert MARGARET not in contacts
    for row in sample_rows():
        if row["contact_id"] == MARGARET:
            continue
        contact = contacts[row["contact_id"]]
        assert contact.salesforce_id == row["salesforce_id"]
        assert contact.name == row["name"]
        assert contact.email == row["email"]
        assert contact.crm_account_name == row["crm_account"]
        assert contact.source == Contact.Source.IMPORT
        assert contact.deleted_at is None  # the sample's `deleted` column is not imported
    assert contacts[ZOE].name == "Zoë Ångström"
    assert contacts[KEN].email == ""

    header, *rows = result_rows(job.success_file)
    assert header == ["ContactId", "SalesforceId", "Name", "Action"]
    assert len(rows) == 12
    assert {row[3] for row in rows} == {"created"}
    assert [ZOE, "003cL0n95KDk033QQB", "Zoë Ångström", "created"] in rows
    header, *failed = result_rows(job.failure_file)
    assert header == [
        "Line",
        "ContactId",
        "SalesforceId",
        "Name",
        "Email",
        "Account",
        "ReasonCode",
        "Reason",
    ]
    assert len(failed) == 1
    line, contact_id, _sf, name, email, _account, code, reason = failed[0]
    assert (line, contact_id, name, email, code) == (
        "10",
        MARGARET,
        "Margaret Hamilton",
        "not-an-email",
        contacts_import.EMAIL_INVALID,
    )
    assert "not a valid email address" in reason
    events = AuditEvent.objects.filter(portal_account=empty)
    assert set(events.values_list("action", flat=True)) == {"create_contact"}
    assert events.count() == 12
    zoe = events.get(subject_label=f"Zoë Ångström ({ZOE})")
    assert zoe.before == {}
    assert zoe.after == {
        "contact_id": ZOE,
        "salesforce_id": "003cL0n95KDk033QQB",
        "name": "Zoë Ångström",
        "email": contacts[ZOE].email,
        "crm_account_name": contacts[ZOE].crm_account_name,
    }
    zoe_line = next(line for line, row in enumerate(sample_rows(), 2) if row["contact_id"] == ZOE)
    assert zoe.detail == f"CSV import {job.pk}, line {zoe_line}"


def test_reimport_updates_everything_and_creates_nothing(empty):
    run(empty)
    before = set(Contact.objects.filter(portal_account=empty).values_list("pk", flat=True))

    job = run(empty)

    assert (job.created, job.failed, contacts_import.updated_count(job)) == (0, 1, 12)
    after = set(Contact.objects.filter(portal_account=empty).values_list("pk", flat=True))
    assert after == before
    _header, *rows = result_rows(job.success_file)
    assert {row[3] for row in rows} == {"updated"}
    updates = AuditEvent.objects.filter(portal_account=empty, action="update_contact")
    assert updates.count() == 12
    assert all(event.before == event.after for event in updates)  # the same file twice


def test_an_update_audits_the_values_before_and_after(empty):
    run(empty)
    content = csv_bytes("ContactId,Name,Email", f"{ZOE},Zoe Angstrom,zoe@new.example")

    job = run(empty, content=content)

    assert contacts_import.updated_count(job) == 1
    event = AuditEvent.objects.get(portal_account=empty, action="update_contact")
    (zoe,) = [row for row in sample_rows() if row["contact_id"] == ZOE]
    assert (event.before["name"], event.before["email"]) == ("Zoë Ångström", zoe["email"])
    assert (event.after["name"], event.after["email"]) == ("Zoe Angstrom", "zoe@new.example")
    assert event.subject_label == f"Zoe Angstrom ({ZOE})"
    assert event.detail == f"CSV import {job.pk}, line 2"


def test_dry_run_counts_creates_updates_and_failures_and_writes_nothing(empty):
    report = contacts_import.validate(make_job(empty), empty)
    assert (report.would_create, report.would_update, report.failed) == (12, 0, 1)
    assert not Contact.objects.filter(portal_account=empty).exists()

    run(empty)
    report = contacts_import.validate(make_job(empty), empty)
    assert (report.would_create, report.would_update, report.failed) == (0, 12, 1)


def test_world_with_deleted_contact_updates_and_keeps_it_deleted(db):
    account = PortalAccountFactory(slug="acme", partner_licenses=50)
    load_world(account)  # Frances Allen is in the CRM's recycle bin
    content = csv_bytes(
        "ContactId,Name,Email",
        "003D6rQJM9UayY20948,Frances E. Allen,fran@example.com",
    )
    job = run(account, "one.csv", content=content)

    assert contacts_import.updated_count(job) == 1
    frances = Contact.objects.get(portal_account=account, contact_id="003D6rQJM9UayY20948")
    assert (frances.name, frances.email) == ("Frances E. Allen", "fran@example.com")
    assert frances.deleted_at is not None
    assert frances.source == Contact.Source.CRM  # updating does not change where it came from


def test_fifteen_character_salesforce_id_updates_the_right_contact(empty):
    pair15, pair18 = "a01M00000062mPg", "a01M00000062mPgIAI"
    assert to_18(pair15) == pair18
    target = Contact.objects.create(
        portal_account=empty, salesforce_id=pair18, name="Old Name", email="old@example.com"
    )
    other = Contact.objects.create(portal_account=empty, name="Bystander")
    content = csv_bytes("SalesforceId,Name,Email,Account", f"{pair15},New Name,new@example.com,X")

    job = run(empty, "sf.csv", content=content)

    assert (job.created, job.failed, contacts_import.updated_count(job)) == (0, 0, 1)
    target.refresh_from_db()
    assert (target.name, target.email, target.crm_account_name) == (
        "New Name",
        "new@example.com",
        "X",
    )
    other.refresh_from_db()
    assert other.name == "Bystander"
    assert result_rows(job.success_file)[1] == [target.contact_id, pair18, "New Name", "updated"]


def test_rows_without_ids_create_contacts_with_generated_ids(empty):
    content = csv_bytes("Name,Email", "New Person,new@example.com")
    job = run(empty, "new.csv", content=content)

    assert job.created == 1
    contact = Contact.objects.get(portal_account=empty)
    assert len(contact.contact_id) == 19
    assert contact.salesforce_id is None
    assert contact.source == Contact.Source.IMPORT
    assert result_rows(job.success_file)[1] == [contact.contact_id, "", "New Person", "created"]


def test_bad_rows_fail_with_plain_reasons_and_neutralised_failure_file(empty):
    existing = Contact.objects.create(
        portal_account=empty,
        contact_id="003AAAAAAAAAAAAAAAA",
        salesforce_id="003gFb51yBMWXaSQQX",
        name="Existing",
    )
    Contact.objects.create(portal_account=empty, contact_id="003BBBBBBBBBBBBBBBB", name="B")
    content = csv_bytes(
        "ContactId,SalesforceId,Name,Email,Account",
        "003CCCCCCCCCCCCCCCC,,First,,",  # 2 created
        "003CCCCCCCCCCCCCCCC,,Again,,",  # 3 duplicate
        "003DDDDDDDDDDDDDDDD,,,,",  # 4 name missing
        ",not-a-salesforce-id,Bad Sf,,",  # 5 invalid Salesforce id
        ",003gFb51yBMWXaSQQA,Bad Checksum,,",  # 6 18 characters, wrong checksum
        "003TOOLONGTOOLONGTOOLONG,,Too Long,,",  # 7 contact id too long
        "003-bad-id-has-dash,,Bad Chars,,",  # 8 19 characters, not letters/digits
        ",,=HYPERLINK(1),=cmd|x,@SUM(1)",  # 9 invalid email, formula cells
        "003BBBBBBBBBBBBBBBB,003gFb51yBMWXaSQQX,Conflict,,",  # 10 ids of two contacts
        ",003gFb51yBMWXaSQQX,By Sf Id,,",  # 11 updates Existing
        "003AAAAAAAAAAAAAAAA,,Existing Again,,",  # 12 duplicate of line 11's contact
    )

    job = run(empty, "bad.csv", content=content)

    assert (job.created, contacts_import.updated_count(job), job.failed) == (1, 1, 9)
    _header, *failed = result_rows(job.failure_file)
    codes = {int(row[0]): row[6] for row in failed}
    assert codes == {
        3: contacts_import.DUPLICATE_ROW,
        4: contacts_import.NAME_MISSING,
        5: contacts_import.SALESFORCE_ID_INVALID,
        6: contacts_import.SALESFORCE_ID_INVALID,
        7: contacts_import.CONTACT_ID_INVALID,
        8: contacts_import.CONTACT_ID_INVALID,
        9: contacts_import.EMAIL_INVALID,
        10: contacts_import.ID_CONFLICT,
        12: contacts_import.DUPLICATE_ROW,
    }
    reasons = {int(row[0]): row[7] for row in failed}
    assert "already on line 2" in reasons[3]
    assert "Name cell is empty" in reasons[4]
    assert reasons[5].startswith("Invalid Salesforce id")
    assert "wrong checksum" in reasons[6]
    assert "24 characters long" in reasons[7]
    assert "already on line 11" in reasons[12]
    formula_row = next(row for row in failed if row[0] == "9")
    assert formula_row[3:6] == ["'=HYPERLINK(1)", "'=cmd|x", "'@SUM(1)"]
    existing.refresh_from_db()
    assert existing.name == "By Sf Id"
    assert Contact.objects.filter(portal_account=empty).count() == 3


def test_another_accounts_contacts_are_never_touched(empty):
    other = PortalAccountFactory(name="Other", slug="other")
    theirs = Contact.objects.create(
        portal_account=other,
        contact_id=ZOE,
        salesforce_id="003cL0n95KDk033QQB",
        name="Their Zoe",
        email="theirs@example.com",
        deleted_at=datetime(2025, 1, 1, tzinfo=UTC),
    )

    job = run(empty)

    assert job.created == 12
    theirs.refresh_from_db()
    assert (theirs.name, theirs.email, theirs.portal_account_id) == (
        "Their Zoe",
        "theirs@example.com",
        other.pk,
    )
    assert theirs.deleted_at is not None
    assert Contact.objects.filter(portal_account=other).count() == 1
    assert Contact.objects.get(portal_account=empty, contact_id=ZOE).name == "Zoë Ångström"


def test_a_killed_run_resumes_after_the_last_committed_batch(empty, monkeypatch):
    job = make_job(empty)
    real_apply_batch = contacts_import._apply_batch
    calls = []

    def die_on_second_batch(*args):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("worker killed")
        return real_apply_batch(*args)

    monkeypatch.setattr(contacts_import, "_apply_batch", die_on_second_batch)
    with pytest.raises(RuntimeError):
        contacts_import.apply(job, batch_size=5)
    job.refresh_from_db()
    assert (job.status, job.processed, job.last_processed_line) == ("failed", 5, 6)
    assert Contact.objects.filter(portal_account=empty).count() == 5

    monkeypatch.setattr(contacts_import, "_apply_batch", real_apply_batch)
    contacts_import.apply(job, batch_size=5)
    job.refresh_from_db()
    assert (job.status, job.processed, job.created, job.failed) == ("done", 13, 12, 1)
    assert Contact.objects.filter(portal_account=empty).count() == 12
    assert len(result_rows(job.success_file)) == 13  # header + 12, none twice


def url(name, account, *args):
    return reverse(name, args=[account.slug, *args])


def test_contacts_target_through_the_wizard(
    technician_client, account, django_capture_on_commit_callbacks
):
    client = technician_client
    with sample_path(SAMPLE).open("rb") as file:
        response = client.post(
            url("import-new", account), {"file": file, "target": "contacts", "user_type": ""}
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    job = ImportJob.objects.get(portal_account=account)
    assert job.target == ImportJob.Target.CONTACTS

    page = client.get(url("import-map", account, job.pk)).content.decode()
    assert "SalesforceId" in page
    response = client.post(
        url("import-map", account, job.pk),
        {"contact_id": "0", "salesforce_id": "1", "name": "2", "email": "3", "crm_account": "4"},
    )
    assert response.status_code == 302
    assert response["Location"] == url("import-review", account, job.pk)

    review = client.get(url("import-review", account, job.pk)).content.decode()
    assert "12 will be created, 0 updated" in review
    assert "1 will fail" in review
    assert "Email invalid" in review
    assert "licenses" not in review
    assert not Contact.objects.filter(portal_account=account, source="import").exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("import-start", account, job.pk))
    assert response["Location"] == url("import-detail", account, job.pk)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE
    assert (job.created, job.failed) == (12, 1)

    detail = client.get(url("import-detail", account, job.pk)).content.decode()
    assert "12 created" in detail
    assert "0 updated" in detail
    assert "Email invalid: 1" in detail
    response = client.get(url("import-download", account, job.pk, "success"))
    assert 'filename="contacts-imported.csv"' in response["Content-Disposition"]
    history = client.get(url("import-list", account)).content.decode()
    assert "Contacts" in history
    assert "contacts.csv" in history

    # The same file again: every row updates.
    with sample_path(SAMPLE).open("rb") as file:
        client.post(url("import-new", account), {"file": file, "target": "contacts"})
    again = ImportJob.objects.filter(portal_account=account).latest("pk")
    client.post(
        url("import-map", account, again.pk),
        {"contact_id": "0", "salesforce_id": "1", "name": "2", "email": "3", "crm_account": "4"},
    )
    review = client.get(url("import-review", account, again.pk)).content.decode()
    assert "0 will be created, 12 updated" in review


def test_contacts_template_download(technician_client, account):
    response = technician_client.get(url("import-template", account) + "?target=contacts")
    assert response.status_code == 200
    text = response.content.decode("utf-8-sig")
    assert text.startswith("ContactId,SalesforceId,Name,Email,Account")


def call(*args, **options):
    out = io.StringIO()
    call_command("import_contacts", *args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


def test_command_dry_run_and_real_run(empty):
    out = call("empty", str(sample_path(SAMPLE)), dry_run=True)
    assert "Dry run" in out
    assert "13 rows: 12 would be created, 0 would be updated, 1 would fail." in out
    assert "Email invalid (email_invalid): 1" in out
    assert not Contact.objects.filter(portal_account=empty).exists()
    assert not ImportJob.objects.exists()

    out = call("empty", str(sample_path(SAMPLE)))
    assert "13 rows, 12 created, 0 updated, 1 failed." in out
    assert "Success file:" in out
    assert "Failure file:" in out
    assert Contact.objects.filter(portal_account=empty).count() == 12
    job = ImportJob.objects.get()
    assert job.target == ImportJob.Target.CONTACTS

    out = call("empty", str(sample_path(SAMPLE)))
    assert "12 updated" in out
    assert "0 created" in out


def test_a_name_cell_with_line_breaks_is_kept_as_one_line():
    from imports import contacts_import

    row = contacts_import.clean({"name": "Ada\tLove\r\nlace\x1b", "crm_account": "Acme\nCorp"})

    assert (row.name, row.crm_account) == ("Ada Love lace", "Acme Corp")
