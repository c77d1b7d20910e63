"""The CSV import wizard in the browser (imports.views), through the HTTP client on the shared
sample world: upload → map → review (dry run) → start (Celery, eager in tests) → progress and
downloads; history, bad files, cancel, HTMX polling, and tenant scoping of every import URL."""

import csv
import io
import re

import pytest
from django.urls import reverse

from accounts.models import Role, User, UserState
from imports import dry_runs, portal_users, tasks
from imports.models import ImportJob
from tests.conftest import console_sign_in
from tests.factories import PortalAccountFactory, PortalUserFactory
from tests.samples import load_world, sample_path


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def world(account):
    """The samples' world in Acme (the conftest account the personas belong to)."""
    account.partner_licenses = 50
    account.customer_licenses = 50
    account.save()
    load_world(account)
    return account


@pytest.fixture
def acme_admin_client(world, client):
    """Acme's account admin (made after the world, which brings its own roles)."""
    admin = PortalUserFactory(
        portal_account=world,
        role=Role.objects.get(portal_account=world, name="Partner User"),
        is_account_admin=True,
        name="Ada Admin",
        email="ada.admin@acme.example",
    )
    return console_sign_in(client, admin)


@pytest.fixture
def other_world(other_account):
    load_world(other_account)
    return other_account


def url(name, account, *args):
    return reverse(name, args=[account.slug, *args])


def upload(client, account, name, user_type="partner"):
    with sample_path(name).open("rb") as file:
        return client.post(url("import-new", account), {"file": file, "user_type": user_type})


def upload_and_map(client, account, name):
    response = upload(client, account, name)
    assert response.status_code == 302, response.content.decode()[:2000]
    job = ImportJob.objects.get(portal_account=account)
    assert response["Location"] == url("import-map", account, job.pk)
    page = client.get(url("import-map", account, job.pk))
    assert page.status_code == 200
    response = client.post(url("import-map", account, job.pk), {"contact_id": "0", "role": "1"})
    assert response.status_code == 302
    assert response["Location"] == url("import-review", account, job.pk)
    return job


def start(client, account, job, django_capture_on_commit_callbacks, **data):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("import-start", account, job.pk), data)
    assert response.status_code == 302
    assert response["Location"] == url("import-detail", account, job.pk)
    job.refresh_from_db()
    return job


def download_rows(client, account, job, which):
    response = client.get(url("import-download", account, job.pk, which))
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    data = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(data, newline="")))


def test_template_sample_through_the_whole_wizard(
    technician_client, world, django_capture_on_commit_callbacks
):
    client = technician_client
    job = upload_and_map(client, world, "portal-users-template.csv")

    review = client.get(url("import-review", world, job.pk))
    assert review.status_code == 200
    assert "2 will be created" in review.content.decode()
    assert "enough" in review.content.decode()
    assert not User.objects.filter(portal_account=world, state=UserState.UNCONFIRMED).exists()

    job = start(client, world, job, django_capture_on_commit_callbacks)
    assert job.status == ImportJob.Status.DONE
    assert (job.created, job.failed, job.total_rows) == (2, 0, 2)

    detail = client.get(url("import-detail", world, job.pk)).content.decode()
    assert "Done" in detail
    assert "2 created" in detail
    assert 'hx-trigger="every 1s"' not in detail  # finished: no polling
    header, *rows = download_rows(client, world, job, "success")
    assert header == ["ContactId", "Role", "UserId"]
    assert sorted(row[0] for row in rows) == ["003CrUZoL8g5ubbbPIa", "003iK2ZWeqhFWCEPyYn"]
    created = User.objects.filter(
        portal_account=world, contact__contact_id__in=[r[0] for r in rows]
    )
    assert sorted(int(row[2]) for row in rows) == sorted(created.values_list("pk", flat=True))
    assert download_rows(client, world, job, "failure") == [
        ["Line", "ContactId", "Role", "ReasonCode", "Reason"]
    ]
    assert download_rows(client, world, job, "source")[0] == ["ContactId", "Role"]

    history = client.get(url("import-list", world)).content.decode()
    assert "portal-users-template.csv" in history
    assert url("import-download", world, job.pk, "failure") in history


def test_mixed_sample_review_groups_failures_by_reason(technician_client, world):
    job = upload_and_map(technician_client, world, "portal-users-mixed.csv")

    page = technician_client.get(url("import-review", world, job.pk)).content.decode()

    for label in [
        "Role not found",
        "Role missing",
        "User already exists",
        "Contact not found",
        "Role inactive",
        "Contact id missing",
        "Duplicate row in file",
    ]:
        assert label in page, label
    assert "Did you mean &#x27;Partner User&#x27;?" in page
    assert not User.objects.filter(portal_account=world, state=UserState.UNCONFIRMED).exists()


def test_activation_option_is_checked_in_the_dry_run_and_used(
    technician_client, world, django_capture_on_commit_callbacks
):
    job = upload_and_map(technician_client, world, "portal-users-template.csv")
    page = technician_client.get(
        url("import-review", world, job.pk), {"checked": "1", "send_activation": "on"}
    )
    assert page.status_code == 200
    assert 'name="send_activation" value="1"' in page.content.decode()

    job = start(
        technician_client, world, job, django_capture_on_commit_callbacks, send_activation="1"
    )
    assert job.options["send_activation"] is True
    assert job.created == 2


def test_the_template_download_is_a_sample_csv(technician_client, world):
    response = technician_client.get(url("import-template", world))
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["ContactId", "Role"]
    assert len(rows) == 2
    assert len(rows[1][0]) == 19


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("bad-xlsx-renamed.csv", "Excel workbook"),
        ("bad-empty.csv", "The file is empty. Export the sheet as CSV with a header row"),
        ("bad-header-only.csv", "no rows"),
        ("bad-duplicate-header.csv", "appears twice"),
    ],
)
def test_a_bad_file_is_refused_on_the_form(technician_client, world, name, message):
    response = upload(technician_client, world, name)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ImportJob.objects.exists()


def test_a_file_over_the_size_limit_is_refused(technician_client, world, settings):
    settings.IMPORT_MAX_BYTES = 10
    response = upload(technician_client, world, "portal-users-template.csv")

    assert response.status_code == 400
    assert not ImportJob.objects.exists()


def test_missing_role_column_shows_the_mapping_message(technician_client, world):
    response = upload(technician_client, world, "bad-no-role-column.csv")
    job = ImportJob.objects.get()
    page = technician_client.get(response["Location"]).content.decode()
    assert '<option value="" selected>' in page  # Role not auto-mapped

    response = technician_client.post(url("import-map", world, job.pk), {"contact_id": "0"})

    assert response.status_code == 400
    assert "No Role column" in response.content.decode()
    job.refresh_from_db()
    assert job.status == ImportJob.Status.UPLOADED


def test_columns_are_auto_mapped_and_can_be_picked_by_hand(technician_client, world):
    response = upload(technician_client, world, "portal-users-odd-header.csv")
    job = ImportJob.objects.get()
    page = technician_client.get(response["Location"]).content.decode()
    assert '<option value="0" selected>A: contact id</option>' in page
    assert "Email" in page  # extra columns can be picked, else are ignored

    response = technician_client.post(
        url("import-map", world, job.pk), {"contact_id": "1", "role": "0"}
    )

    assert response.status_code == 302
    job.refresh_from_db()
    assert job.column_mapping == {"contact_id": 1, "role": 0}
    review = technician_client.get(url("import-review", world, job.pk)).content.decode()
    assert "0 will be created" in review


def test_one_column_for_two_fields_is_refused(technician_client, world):
    upload(technician_client, world, "portal-users-template.csv")
    job = ImportJob.objects.get()

    response = technician_client.post(
        url("import-map", world, job.pk), {"contact_id": "0", "role": "0"}
    )

    assert response.status_code == 400
    assert "picked for both" in response.content.decode()


def test_account_admin_imports_for_their_own_account_only(
    acme_admin_client, world, other_world, django_capture_on_commit_callbacks
):
    client = acme_admin_client
    job = upload_and_map(client, world, "portal-users-template.csv")
    job = start(client, world, job, django_capture_on_commit_callbacks)
    assert job.status == ImportJob.Status.DONE
    assert job.created == 2

    with sample_path("portal-users-template.csv").open("rb") as file:
        response = client.post(url("import-new", other_world), {"file": file})
    assert response.status_code == 404
    assert client.get(url("import-list", other_world)).status_code == 404
    assert not ImportJob.objects.filter(portal_account=other_world).exists()


def test_another_accounts_job_is_404_on_every_import_url(
    technician_client, acme_admin_client, world, django_capture_on_commit_callbacks
):
    globex = PortalAccountFactory(name="Globex Portal", slug="globex")
    load_world(globex)
    other_job = upload_and_map(technician_client, globex, "portal-users-template.csv")
    other_job = start(technician_client, globex, other_job, django_capture_on_commit_callbacks)
    before = ImportJob.objects.values().get(pk=other_job.pk)

    for slug in (globex.slug, world.slug):
        for name in ["import-detail", "import-map", "import-review"]:
            path = reverse(name, args=[slug, other_job.pk])
            assert acme_admin_client.get(path).status_code == 404, path
        for name in ["import-start", "import-cancel"]:
            path = reverse(name, args=[slug, other_job.pk])
            assert acme_admin_client.post(path).status_code == 404, path
        for which in ["source", "success", "failure"]:
            path = reverse("import-download", args=[slug, other_job.pk, which])
            assert acme_admin_client.get(path).status_code == 404, path
    assert ImportJob.objects.values().get(pk=other_job.pk) == before


def test_cancel_a_running_job(technician_client, world):
    job = upload_and_map(technician_client, world, "portal-users-template.csv")
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.RUNNING)

    response = technician_client.post(url("import-cancel", world, job.pk))

    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == ImportJob.Status.CANCELLED
    tasks.run_import(job.pk)  # a queued task that starts later leaves it alone
    job.refresh_from_db()
    assert (job.status, job.created) == (ImportJob.Status.CANCELLED, 0)


def test_cancel_stops_the_run_between_batches(technician_client, world, monkeypatch):
    job = upload_and_map(technician_client, world, "portal-users-template.csv")
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.RUNNING)
    apply = portal_users.apply

    def apply_cancelled_after_the_first_batch(job, **kwargs):
        def cancel(job):
            technician_client.post(url("import-cancel", world, job.pk))

        return apply(job, progress=cancel, **kwargs)

    monkeypatch.setattr(portal_users, "apply", apply_cancelled_after_the_first_batch)
    assert tasks.run_import(job.pk, batch_size=1) == ImportJob.Status.CANCELLED

    job.refresh_from_db()
    assert job.status == ImportJob.Status.CANCELLED
    assert (job.created, job.processed) == (1, 1)


def test_a_cancel_while_the_worker_starts_is_not_overwritten(technician_client, world, monkeypatch):
    """The person cancels after the worker picked the job up and before it saved anything: the
    run's first save must not put the job back to running."""
    job = upload_and_map(technician_client, world, "portal-users-template.csv")
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.RUNNING)
    open_and_map = portal_users.open_and_map

    def cancelled_while_reading_the_file(job_or_file, mapping=None):
        technician_client.post(url("import-cancel", world, job.pk))
        return open_and_map(job_or_file, mapping)

    monkeypatch.setattr(portal_users, "open_and_map", cancelled_while_reading_the_file)
    assert tasks.run_import(job.pk) == ImportJob.Status.CANCELLED

    job.refresh_from_db()
    assert (job.status, job.created, job.processed) == (ImportJob.Status.CANCELLED, 0, 0)
    assert not User.objects.filter(portal_account=world, state=UserState.UNCONFIRMED).exists()
    page = technician_client.get(url("import-detail", world, job.pk)).content.decode()
    assert "Cancelled" in page
    assert 'hx-trigger="every 1s"' not in page


def test_progress_polls_while_running_and_htmx_gets_only_the_fragment(technician_client, world):
    job = upload_and_map(technician_client, world, "portal-users-template.csv")
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJob.Status.RUNNING, total_rows=2, processed=1
    )
    path = url("import-detail", world, job.pk)

    fragment = technician_client.get(path, headers={"HX-Request": "true"}).content.decode()
    page = technician_client.get(path).content.decode()

    assert 'hx-trigger="every 1s"' in fragment
    assert "<progress" in fragment
    assert "1 / 2 rows" in fragment
    assert "<html" not in fragment
    assert "subnav" not in fragment
    assert "<html" in page
    assert 'hx-trigger="every 1s"' in page

    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.DONE, processed=2)
    fragment = technician_client.get(path, headers={"HX-Request": "true"}).content.decode()
    assert 'hx-trigger="every 1s"' not in fragment
    assert "2 / 2 rows" in fragment


@pytest.fixture
def big_file_threshold(monkeypatch):
    """Every file counts as big: its dry run goes to the worker."""
    monkeypatch.setattr(dry_runs, "INLINE_MAX_BYTES", 0)


@pytest.fixture
def queued_dry_runs(monkeypatch):
    """Dry runs handed to Celery, kept for the test to run as the worker would."""
    queued = []
    monkeypatch.setattr(tasks.dry_run, "delay", lambda *args: queued.append(args))
    return queued


def poll_url(html):
    return re.search(r'hx-get="([^"]+)" hx-trigger="every 1s"', html).group(1).replace("&amp;", "&")


def test_a_big_file_is_checked_by_the_worker_while_the_review_page_polls(
    technician_client,
    world,
    big_file_threshold,
    queued_dry_runs,
    django_capture_on_commit_callbacks,
):
    job = upload_and_map(technician_client, world, "portal-users-mixed.csv")
    path = url("import-review", world, job.pk)

    with django_capture_on_commit_callbacks(execute=True):
        page = technician_client.get(path)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Checking every row of the file" in html
    assert "Refresh" in html  # without JavaScript
    assert len(queued_dry_runs) == 1
    with django_capture_on_commit_callbacks(execute=True):
        reloaded = technician_client.get(path).content.decode()
    assert "Checking every row of the file" in reloaded
    assert len(queued_dry_runs) == 1  # a reload does not start another dry run

    tasks.dry_run(*queued_dry_runs[0])  # the worker

    fragment = technician_client.get(poll_url(html), headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    fragment = fragment.content.decode()
    assert "<html" not in fragment
    assert 'hx-trigger="every 1s"' not in fragment
    assert "Role not found" in fragment
    assert "Duplicate row in file" in fragment
    assert "Start import" in fragment
    assert not User.objects.filter(portal_account=world, state=UserState.UNCONFIRMED).exists()
    job.refresh_from_db()
    assert job.status == ImportJob.Status.VALIDATED

    with django_capture_on_commit_callbacks(execute=True):
        technician_client.get(path)
    assert len(queued_dry_runs) == 1  # the page shows the kept report
    token = job.dry_run["token"]
    with django_capture_on_commit_callbacks(execute=True):
        technician_client.get(path, {"checked": "1", "send_activation": "", "again": token})
    assert len(queued_dry_runs) == 2  # "Check again"


def test_without_a_broker_the_big_files_dry_run_runs_at_once(
    technician_client, world, big_file_threshold, django_capture_on_commit_callbacks
):
    """Celery runs eagerly: the task runs when the request queues it (in a test, where the
    request runs inside the test's transaction, when the captured on-commit callbacks run)."""
    job = upload_and_map(technician_client, world, "portal-users-template.csv")
    path = url("import-review", world, job.pk)

    with django_capture_on_commit_callbacks(execute=True):
        technician_client.get(path)
    page = technician_client.get(path).content.decode()

    assert "2 will be created" in page
    assert 'hx-trigger="every 1s"' not in page


def test_changed_options_replace_a_dry_run_still_in_the_worker(
    technician_client,
    world,
    big_file_threshold,
    queued_dry_runs,
    django_capture_on_commit_callbacks,
):
    job = upload_and_map(technician_client, world, "portal-users-template.csv")
    path = url("import-review", world, job.pk)
    with django_capture_on_commit_callbacks(execute=True):
        technician_client.get(path)
        technician_client.get(path, {"checked": "1", "send_activation": "on"})
    first, second = queued_dry_runs

    tasks.dry_run(*first)  # too late: replaced
    job.refresh_from_db()
    assert (job.dry_run["token"], job.dry_run["state"]) == (second[1], "running")

    tasks.dry_run(*second)
    job.refresh_from_db()
    assert job.dry_run["state"] == "done"
    assert job.dry_run["options"]["send_activation"] is True


def test_a_dry_run_that_ends_after_the_start_leaves_the_import_alone(
    technician_client,
    world,
    big_file_threshold,
    queued_dry_runs,
    django_capture_on_commit_callbacks,
):
    job = upload_and_map(technician_client, world, "portal-users-template.csv")
    with django_capture_on_commit_callbacks(execute=True):
        technician_client.get(url("import-review", world, job.pk))
    job = start(technician_client, world, job, django_capture_on_commit_callbacks)
    assert job.status == ImportJob.Status.DONE

    tasks.dry_run(*queued_dry_runs[0])

    job.refresh_from_db()
    assert (job.status, job.created) == (ImportJob.Status.DONE, 2)
