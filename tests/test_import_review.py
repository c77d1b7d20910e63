"""The review step of the import wizard: why Start is disabled when nothing can be created, and
the dry run's own failure file (every failing row, before anything is imported)."""

import csv
import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import AuditEvent, User, UserState
from imports import dry_runs, tasks
from imports.models import ImportJob
from tests.samples import load_world
from tests.test_import_wizard import upload_and_map, url


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


def upload_rows(client, account, text):
    upload = SimpleUploadedFile("people.csv", text.encode(), content_type="text/csv")
    response = client.post(url("import-new", account), {"file": upload, "user_type": "partner"})
    assert response.status_code == 302, response.content.decode()[:2000]
    job = ImportJob.objects.filter(portal_account=account).latest("pk")
    response = client.post(url("import-map", account, job.pk), {"contact_id": "0", "role": "1"})
    assert response.status_code == 302
    return job


def rows_of(response):
    data = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(data, newline="")))


def test_when_nothing_can_be_created_the_review_says_why(technician_client, world):
    job = upload_rows(
        technician_client, world, "ContactId,Role\n003NOSUCHCONTACT0001,Partner User\n,Nope\n"
    )
    page = technician_client.get(url("import-review", world, job.pk)).content.decode()
    assert "0 will be created" in page
    assert 'disabled aria-describedby="nothing-to-do"' in page
    assert 'id="nothing-to-do"' in page
    assert "Nothing can be created: every row fails" in page


def test_with_no_licenses_free_the_review_says_so(technician_client, world):
    world.partner_licenses = world.customer_licenses = world.employee_licenses = 0
    world.save()
    job = upload_and_map(technician_client, world, "portal-users-template.csv")
    page = technician_client.get(url("import-review", world, job.pk)).content.decode()
    assert re.search(r"No [A-Z]\w+( or [A-Z]\w+)* licenses are free, so no user can be", page)
    assert 'disabled aria-describedby="nothing-to-do"' in page


def test_a_startable_review_has_no_reason_and_an_enabled_button(technician_client, world):
    job = upload_and_map(technician_client, world, "portal-users-template.csv")
    page = technician_client.get(url("import-review", world, job.pk)).content.decode()
    assert 'id="nothing-to-do"' not in page
    assert "disabled" not in page.split('action="/accounts/acme/imports/')[-1].split("</form>")[0]


def test_the_dry_runs_failure_file_lists_every_failing_row(technician_client, world):
    job = upload_and_map(technician_client, world, "portal-users-mixed.csv")
    page = technician_client.get(url("import-review", world, job.pk)).content.decode()
    job.refresh_from_db()
    report = dry_runs.report(job)
    download = url("import-download", world, job.pk, "dry-run-failures")
    assert download in page
    response = technician_client.get(download)
    assert response.status_code == 200
    assert "failures-dry-run.csv" in response["Content-Disposition"]
    header, *rows = rows_of(response)
    assert header == ["Line", "ContactId", "Role", "ReasonCode", "Reason"]
    assert len(rows) == report.failed > 0
    codes = {row[3] for row in rows}
    assert codes == set(report.failures)
    assert not User.objects.filter(portal_account=world, state=UserState.UNCONFIRMED).exists()


def test_a_formula_in_the_file_is_neutralised_in_the_dry_run_failure_file(technician_client, world):
    job = upload_rows(technician_client, world, "ContactId,Role\n=HYPERLINK(1),Partner User\n")
    technician_client.get(url("import-review", world, job.pk))
    response = technician_client.get(url("import-download", world, job.pk, "dry-run-failures"))
    (_, row) = rows_of(response)
    assert row[1].startswith("'=")


def test_a_new_dry_run_replaces_the_old_failure_file(technician_client, world):
    job = upload_and_map(technician_client, world, "portal-users-mixed.csv")
    review = url("import-review", world, job.pk)
    technician_client.get(review)
    job.refresh_from_db()
    first = dry_runs.failure_file_name(job)
    technician_client.get(review, {"checked": "1", "send_activation": "on"})  # options changed
    job.refresh_from_db()
    second = dry_runs.failure_file_name(job)
    storage = job.source_file.storage
    assert first != second
    assert storage.exists(second)
    assert not storage.exists(first)


def test_no_failure_file_before_the_dry_run_is_done(technician_client, world):
    job = upload_and_map(technician_client, world, "portal-users-mixed.csv")
    assert (
        technician_client.get(url("import-download", world, job.pk, "dry-run-failures")).status_code
        == 404
    )


def test_retention_deletes_the_dry_runs_failure_file(technician_client, world, settings):
    job = upload_and_map(technician_client, world, "portal-users-mixed.csv")
    technician_client.get(url("import-review", world, job.pk))
    job.refresh_from_db()
    name = dry_runs.failure_file_name(job)
    settings.IMPORT_FILE_RETENTION_DAYS = 0
    ImportJob.objects.filter(pk=job.pk).update(created_at="2000-01-01T00:00:00Z")
    assert tasks.delete_expired_import_files() == 1
    assert not job.source_file.storage.exists(name)


def test_another_accounts_dry_run_file_is_404(technician_client, world, other_account):
    job = upload_and_map(technician_client, world, "portal-users-mixed.csv")
    technician_client.get(url("import-review", world, job.pk))
    other = reverse("import-download", args=[other_account.slug, job.pk, "dry-run-failures"])
    assert technician_client.get(other).status_code == 404


# --- Drafts ---


def test_a_draft_can_be_discarded_and_the_log_says_who(
    technician_client, technician, world, django_capture_on_commit_callbacks
):
    job = upload_and_map(technician_client, world, "portal-users-mixed.csv")
    technician_client.get(url("import-review", world, job.pk))
    job.refresh_from_db()
    source, failures = job.source_file.name, dry_runs.failure_file_name(job)
    storage = job.source_file.storage
    history = technician_client.get(url("import-list", world)).content.decode()
    assert "Left by" in history
    assert url("import-discard", world, job.pk) in history

    with django_capture_on_commit_callbacks(execute=True):
        response = technician_client.post(url("import-discard", world, job.pk), follow=True)

    assert response.redirect_chain[-1][0] == url("import-list", world)
    assert "Import draft portal-users-mixed.csv discarded." in response.content.decode()
    assert not ImportJob.objects.filter(pk=job.pk).exists()
    assert not storage.exists(source)
    assert not storage.exists(failures)
    event = AuditEvent.objects.get(action="discard_import")
    assert event.actor == technician
    assert event.portal_account == world
    assert event.detail == f"portal-users-mixed.csv, uploaded by {technician.name}"


def test_a_started_import_cannot_be_discarded(
    technician_client, world, django_capture_on_commit_callbacks
):
    job = upload_and_map(technician_client, world, "portal-users-template.csv")
    technician_client.get(url("import-review", world, job.pk))
    with django_capture_on_commit_callbacks(execute=True):
        technician_client.post(url("import-start", world, job.pk))
    detail = technician_client.get(url("import-detail", world, job.pk)).content.decode()
    assert url("import-discard", world, job.pk) not in detail

    response = technician_client.post(url("import-discard", world, job.pk), follow=True)

    assert "This import was started: it stays in the history." in response.content.decode()
    assert ImportJob.objects.filter(pk=job.pk).exists()
    assert not AuditEvent.objects.filter(action="discard_import").exists()


def test_discard_is_post_only_and_scoped(technician_client, world, other_account):
    job = upload_and_map(technician_client, world, "portal-users-mixed.csv")
    assert technician_client.get(url("import-discard", world, job.pk)).status_code == 405
    other = reverse("import-discard", args=[other_account.slug, job.pk])
    assert technician_client.post(other).status_code == 404
    assert ImportJob.objects.filter(pk=job.pk).exists()
