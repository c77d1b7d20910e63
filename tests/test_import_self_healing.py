"""Imports heal themselves (the fault-injection run against the production shape).

1. A worker killed in the middle of an import: the job's heartbeat stops, the stalled-import
   sweep (imports.tasks.resume_stalled_imports) hands it to another worker with a new ticket,
   and that run resumes after the last committed row; a run given up on that wakes up later
   cannot write (its writes are conditional on the job's run token, its result-file rows go to
   a file nobody reads any more). The worker tests SIGKILL and SIGSTOP a real Celery worker.
2. A database connection terminated under an import (pg_terminate_backend from another
   connection): the run neither marks the job failed nor dies in its failure handler; the task
   reopens the connection, comes back and finishes.
3. Planner statistics: a bulk load into an account analyses what it changed, so the portal-user
   import right after a contacts load is not planned for an empty account (autovacuum off).

Every case ends with the outcome people rely on: every row of the file imported exactly once
(users, audit events and the success file), the job done."""

import csv
import io
import json
import re
import signal
import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import bulk_invites
from accounts.models import AuditEvent, Role, User
from contacts import sync
from contacts.models import Contact
from helpers import planner_statistics
from imports import contacts_import, pipeline, portal_users, tasks
from imports.models import ImportJob
from imports.pipeline import Superseded
from imports.result_files import ResultFiles
from tests.factories import PortalAccountFactory

# The real worker's fixtures and process wrapper.
from tests.test_outbox_worker import PROJECT_ROOT, Worker, broker  # noqa: F401

Status = ImportJob.Status


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def seed(count, *, licenses=None):
    """A portal account with a role and `count` contacts (ids in file order)."""
    account = PortalAccountFactory(partner_licenses=licenses or count + 10)
    Role.objects.create(portal_account=account, name="Partner User", user_type="partner")
    Contact.objects.bulk_create(
        [
            Contact(
                portal_account=account,
                contact_id=f"C{account.pk:04d}{i:014d}",
                name=f"Person {i}",
                email=f"person{i}@example.com",
            )
            for i in range(count)
        ],
        batch_size=2000,
    )
    contact_ids = [f"C{account.pk:04d}{i:014d}" for i in range(count)]
    return account, contact_ids


def make_job(account, contact_ids):
    lines = ["ContactId,Role", *(f"{contact_id},Partner User" for contact_id in contact_ids)]
    job = ImportJob(
        portal_account=account,
        original_filename="users.csv",
        options={"send_activation": False, "user_type": "partner"},
        status=Status.VALIDATED,  # mapped and dry-run: ready to start
    )
    job.source_file.save("users.csv", ContentFile("\n".join(lines).encode()), save=False)
    job.save()
    return job


def running(job, **fields):
    """The job as the console's Start leaves it: running, with the ticket of a queued task."""
    ticket = tasks.start_run(job, job.options, None)
    assert ticket, "the job could not be started"
    if fields:
        ImportJob.objects.filter(pk=job.pk).update(**fields)
    return ticket


def result_rows(fieldfile):
    with fieldfile.open("rb") as binary:
        text = binary.read().decode("utf-8-sig")
    header, *rows = csv.reader(io.StringIO(text, newline=""))
    return header, rows


def assert_every_row_imported_once(job_id, account, contact_ids):
    job = ImportJob.objects.get(pk=job_id)
    assert job.status == Status.DONE, (job.status, job.error_message)
    rows = len(contact_ids)
    assert (job.total_rows, job.processed, job.created, job.failed) == (rows, rows, rows, 0)
    users = User.objects.filter(portal_account=account)
    assert users.count() == rows
    assert set(users.values_list("contact__contact_id", flat=True)) == set(contact_ids)
    assert AuditEvent.objects.filter(portal_account=account, action="invite").count() == rows
    header, created = result_rows(job.success_file)
    assert header == ["ContactId", "Role", "UserId"]
    assert [row[0] for row in created] == contact_ids, "success file: each row once, in order"
    assert sorted(int(row[2]) for row in created) == sorted(users.values_list("pk", flat=True))
    assert result_rows(job.failure_file)[1] == []
    return job


@pytest.fixture
def queued(monkeypatch):
    """Tickets handed to the broker, recorded instead of run."""
    calls = []
    monkeypatch.setattr(tasks, "queue_run", lambda job_id, ticket: calls.append((job_id, ticket)))
    return calls


class WorkerKilled(BaseException):
    """Stands in for SIGKILL in-process: nothing of the run's own error handling runs."""


# --- The lease: a run given up on cannot write ---


def test_a_run_given_up_on_stops_at_its_next_batch_and_the_resumed_run_does_the_rest(
    db, settings, queued, django_capture_on_commit_callbacks
):
    account, contact_ids = seed(6)
    job = make_job(account, contact_ids)
    ticket = running(job)
    settings.IMPORT_STALL_MINUTES = 0  # any running job counts as stalled

    def slow_worker_is_given_up_on(job):
        if job.processed == 2:
            with django_capture_on_commit_callbacks(execute=True):
                assert tasks.resume_stalled(job.pk)

    with pytest.raises(Superseded):
        portal_users.apply(job, batch_size=2, progress=slow_worker_is_given_up_on, lease=ticket)

    job.refresh_from_db()
    assert (job.status, job.processed, job.stall_count) == (Status.RUNNING, 2, 1)
    [(job_id, new_ticket)] = queued
    assert (job_id, job.run_token) == (job.pk, new_ticket)
    assert tasks.run_import(job.pk, batch_size=2, lease=new_ticket) == Status.DONE
    job = assert_every_row_imported_once(job.pk, account, contact_ids)
    assert job.stall_count == 0  # progress since the resume


def test_a_message_delivered_twice_runs_the_import_once(db):
    account, contact_ids = seed(6)
    job = make_job(account, contact_ids)
    ticket = running(job)
    second_delivery = []

    def the_broker_delivers_the_message_again(job):
        if not second_delivery:
            second_delivery.append(tasks.run_import(job.pk, batch_size=2, lease=ticket))

    portal_users.apply(
        job, batch_size=2, progress=the_broker_delivers_the_message_again, lease=ticket
    )

    assert second_delivery == [Status.RUNNING]  # its ticket was used: it did nothing
    assert_every_row_imported_once(job.pk, account, contact_ids)


def test_a_message_without_a_ticket_runs_only_a_job_nobody_holds(db):
    account, contact_ids = seed(4)
    job = make_job(account, contact_ids)
    running(job)  # a ticket is out for a queued task

    assert tasks.run_import(job.pk) == Status.RUNNING
    assert ImportJob.objects.get(pk=job.pk).processed == 0

    ImportJob.objects.filter(pk=job.pk).update(run_token="")  # queued before tickets existed
    assert tasks.run_import(job.pk) == Status.DONE
    assert_every_row_imported_once(job.pk, account, contact_ids)


def test_a_run_given_up_on_writes_its_late_rows_into_a_file_nobody_reads(db):
    account, contact_ids = seed(1)
    job = make_job(account, contact_ids)
    late = ResultFiles(job).__enter__()
    late.created("C-committed", "Partner User", 1)
    late.commit_point()  # the job now counts these bytes as committed

    resumed = ResultFiles(job).__enter__()  # the resumed run starts from the committed bytes
    late.created("C-late", "Partner User", 2)  # the stalled run wakes up and writes on
    late.commit_point()
    resumed.created("C-resumed", "Partner User", 3)
    resumed.commit_point()
    late.__exit__(None, None, None)
    resumed.__exit__(None, None, None)

    header, rows = result_rows(job.success_file)
    assert [row[0] for row in rows] == ["C-committed", "C-resumed"]


# --- The sweep ---


def test_the_sweep_resumes_a_job_whose_worker_died_and_every_row_is_imported_once(
    db, settings, django_capture_on_commit_callbacks
):
    account, contact_ids = seed(9)
    job = make_job(account, contact_ids)
    ticket = running(job)

    def killed_after_the_second_batch(job):
        if job.processed == 4:
            raise WorkerKilled

    with pytest.raises(WorkerKilled):
        portal_users.apply(job, batch_size=2, progress=killed_after_the_second_batch, lease=ticket)
    assert tasks.resume_stalled_imports() == 0  # not yet: it made progress a moment ago

    settings.IMPORT_BATCH_SIZE = 2
    ImportJob.objects.filter(pk=job.pk).update(progress_at=timezone.now() - timedelta(minutes=4))
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.resume_stalled_imports() == 1  # no broker in tests: the run happens here

    assert_every_row_imported_once(job.pk, account, contact_ids)


def test_two_sweeps_hand_a_stalled_job_out_once(db, queued, django_capture_on_commit_callbacks):
    account, contact_ids = seed(2)
    stalled = make_job(account, contact_ids)
    running(stalled, progress_at=timezone.now() - timedelta(minutes=10), run_token="dead-run")
    busy = make_job(account, contact_ids)
    running(busy, progress_at=timezone.now() - timedelta(minutes=1))
    # Started, but its message was lost with the broker before a worker ever claimed it.
    lost = make_job(account, contact_ids)
    running(lost, progress_at=None, started_at=timezone.now() - timedelta(minutes=5))

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.resume_stalled_imports() == 2
        assert tasks.resume_stalled_imports() == 0

    assert sorted(job_id for job_id, _ticket in queued) == sorted([stalled.pk, lost.pk])
    for job_id, ticket in queued:
        job = ImportJob.objects.get(pk=job_id)
        assert (job.status, job.run_token, job.stall_count) == (Status.RUNNING, ticket, 1)


def test_a_job_that_stalls_again_and_again_is_failed_with_a_reason(db, queued):
    account, contact_ids = seed(2)
    job = make_job(account, contact_ids)
    running(
        job,
        progress_at=timezone.now() - timedelta(minutes=10),
        stall_count=tasks.MAX_STALLS,
        processed=1,
    )

    assert tasks.resume_stalled_imports() == 0

    job.refresh_from_db()
    assert job.status == Status.FAILED
    assert "resumed 5 times" in job.error_message
    assert "row 1" in job.error_message
    assert queued == []


# --- The console ---


def detail(client, job):
    return client.get(reverse("import-detail", args=[job.portal_account.slug, job.pk]))


@pytest.fixture
def resume(django_capture_on_commit_callbacks):
    """POST Resume as the console does; the hand-off after the commit runs (eagerly, here)."""

    def post(client, job):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                reverse("import-resume", args=[job.portal_account.slug, job.pk]), follow=True
            )

    return post


@pytest.fixture
def acme_job(account):
    Role.objects.get_or_create(
        portal_account=account, name="Partner User", defaults={"user_type": "partner"}
    )
    contacts = Contact.objects.bulk_create(
        [
            Contact(portal_account=account, name=f"P {i}", email=f"p{i}@example.com")
            for i in range(3)
        ]
    )
    return make_job(account, [contact.contact_id for contact in contacts])


def _a_worker_is_alive():
    from operations.models import Heartbeat

    now = timezone.now()
    Heartbeat.objects.create(
        name="celery@box", kind=Heartbeat.Kind.WORKER, pid=1, started_at=now, seen_at=now
    )


def test_the_job_page_offers_resume_on_a_stalled_import(
    technician_client, account, acme_job, resume
):
    _a_worker_is_alive()  # with a broker (CI), else the page says no worker runs at all
    running(acme_job, progress_at=timezone.now() - timedelta(minutes=7), processed=0)

    page = detail(technician_client, acme_job).content.decode()
    assert "Stalled" in page
    assert "No progress since" in page
    assert "Resume import" in page

    page = resume(technician_client, acme_job).content.decode()

    assert "Import resumed" in page
    acme_job.refresh_from_db()
    assert (acme_job.status, acme_job.created) == (Status.DONE, 3)  # eager: ran in the request


def test_the_job_page_says_when_no_worker_is_running(technician_client, acme_job, settings):
    """A running import with no worker alive waits: the page says so, and whom to tell, instead
    of "Running" alone or a promise that it is picked up automatically."""
    settings.CELERY_TASK_ALWAYS_EAGER = False  # a real broker: workers must be alive
    running(acme_job, progress_at=timezone.now(), processed=0)
    # Moving (a `manage.py` import needs no worker): nothing to say.
    assert "No background worker" not in detail(technician_client, acme_job).content.decode()
    ImportJob.objects.filter(pk=acme_job.pk).update(
        progress_at=timezone.now() - timedelta(minutes=7)
    )

    page = detail(technician_client, acme_job).content.decode()
    assert "No background worker is running, so the import waits." in page
    assert "tell whoever runs Portal Admin" in page
    assert "picked up again automatically" not in page

    _a_worker_is_alive()
    page = detail(technician_client, acme_job).content.decode()
    assert "No background worker is running" not in page
    assert "picked up again automatically" in page


def test_an_import_making_progress_is_not_resumed(technician_client, account, acme_job, resume):
    ticket = running(acme_job, progress_at=timezone.now() - timedelta(seconds=20))

    page = detail(technician_client, acme_job).content.decode()
    assert "Resume import" not in page
    assert "Stalled" not in page

    page = resume(technician_client, acme_job).content.decode()

    assert "needs no resume" in page
    acme_job.refresh_from_db()
    assert (acme_job.status, acme_job.run_token) == (Status.RUNNING, ticket)


def test_a_failed_import_can_be_resumed(technician_client, account, acme_job, resume):
    running(acme_job)
    ImportJob.objects.filter(pk=acme_job.pk).update(
        status=Status.FAILED, error_message="Disk full", finished_at=timezone.now()
    )
    assert "Resume import" in detail(technician_client, acme_job).content.decode()

    resume(technician_client, acme_job)

    acme_job.refresh_from_db()
    assert (acme_job.status, acme_job.created, acme_job.error_message) == (Status.DONE, 3, "")


def test_a_file_that_failed_its_dry_run_is_not_imported_by_a_resume(
    technician_client, account, acme_job, resume
):
    ImportJob.objects.filter(pk=acme_job.pk).update(status=Status.FAILED, error_message="Bad")
    assert "Resume import" not in detail(technician_client, acme_job).content.decode()

    page = resume(technician_client, acme_job).content.decode()

    assert "cannot be resumed" in page
    acme_job.refresh_from_db()
    assert (acme_job.status, acme_job.created) == (Status.FAILED, 0)


def test_another_accounts_import_cannot_be_resumed(account_admin_client, other_account, queued):
    contact = Contact.objects.create(portal_account=other_account, name="G", email="g@example.com")
    job = make_job(other_account, [contact.contact_id])
    ticket = running(job, progress_at=timezone.now() - timedelta(minutes=10))

    for slug in (other_account.slug, "acme"):
        url = reverse("import-resume", args=[slug, job.pk])
        assert account_admin_client.post(url).status_code == 404, slug

    assert ImportJob.objects.get(pk=job.pk).run_token == ticket
    assert queued == []


# --- A database connection terminated under the import (PostgreSQL) ---


def backend_pid():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def terminate_backend(pid):
    """pg_terminate_backend(pid) from another connection (another thread), then wait until the
    backend is gone, so that the import's next statement meets a dead connection."""
    outcome = {}

    def terminate():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
                outcome["terminated"] = cursor.fetchone()[0]
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
                    if cursor.fetchone() is None:
                        outcome["gone"] = True
                        break
                    time.sleep(0.01)
        finally:
            connection.close()

    thread = threading.Thread(target=terminate)
    thread.start()
    thread.join(15)
    assert outcome == {"terminated": True, "gone": True}, outcome


@pytest.fixture
def never_marked_failed(monkeypatch):
    """Every time the run marked its job failed (it must not, for a lost connection)."""
    calls = []
    mark_failed = pipeline.mark_failed

    def recording(job, error):
        calls.append(repr(error))
        mark_failed(job, error)

    monkeypatch.setattr(pipeline, "mark_failed", recording)
    return calls


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_connection_terminated_between_batches_is_reopened_and_the_import_goes_on(
    monkeypatch, never_marked_failed
):
    account, contact_ids = seed(1000)
    job = make_job(account, contact_ids)
    ticket = running(job)
    apply_batch = portal_users._apply_batch
    batches, pids = [], []

    def terminated_after_the_third_batch(*args):
        apply_batch(*args)  # committed
        batches.append(1)
        pids.append(backend_pid())
        if len(batches) == 3:
            terminate_backend(pids[-1])

    monkeypatch.setattr(portal_users, "_apply_batch", terminated_after_the_third_batch)
    result = tasks.run_import.apply(args=(job.pk,), kwargs={"batch_size": 100, "lease": ticket})

    assert result.get() == Status.DONE
    assert never_marked_failed == []
    assert len(set(pids)) == 2, "the retry works on a new connection"
    assert len(batches) == 10  # the three committed batches are not done again
    assert_every_row_imported_once(job.pk, account, contact_ids)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_connection_terminated_in_the_middle_of_a_batch_loses_only_that_uncommitted_batch(
    monkeypatch, never_marked_failed
):
    account, contact_ids = seed(1000)
    job = make_job(account, contact_ids)
    ticket = running(job)
    invite_many = bulk_invites.invite_many
    calls = []

    def terminated_after_the_third_batch_wrote_its_users(*args, **kwargs):
        written = invite_many(*args, **kwargs)  # inserted, not committed
        calls.append(1)
        if len(calls) == 3:
            terminate_backend(backend_pid())
        return written

    monkeypatch.setattr(
        bulk_invites, "invite_many", terminated_after_the_third_batch_wrote_its_users
    )
    result = tasks.run_import.apply(args=(job.pk,), kwargs={"batch_size": 100, "lease": ticket})

    assert result.get() == Status.DONE
    assert never_marked_failed == []
    assert len(calls) == 11  # the third batch once more, after the two committed ones
    assert_every_row_imported_once(job.pk, account, contact_ids)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_run_given_up_on_in_the_middle_of_a_batch_cannot_commit_it(monkeypatch, settings):
    """The slow worker is inside its second batch when the sweep (another connection) hands
    the job to another run: that batch rolls back, and the resumed run does it instead."""
    account, contact_ids = seed(6)
    job = make_job(account, contact_ids)
    ticket = running(job)
    settings.IMPORT_STALL_MINUTES = 0  # any running job counts as stalled
    monkeypatch.setattr(tasks, "queue_run", lambda job_id, ticket: tickets.append(ticket))
    invite_many = bulk_invites.invite_many
    calls, tickets = [], []

    def sweep_from_another_connection():
        try:
            assert tasks.resume_stalled(job.pk)
        finally:
            connection.close()

    def given_up_on_during_the_second_batch(*args, **kwargs):
        written = invite_many(*args, **kwargs)
        calls.append(1)
        if len(calls) == 2:
            sweep = threading.Thread(target=sweep_from_another_connection)
            sweep.start()
            sweep.join(10)
        return written

    monkeypatch.setattr(bulk_invites, "invite_many", given_up_on_during_the_second_batch)
    with pytest.raises(Superseded):
        portal_users.apply(job, batch_size=2, lease=ticket)

    job.refresh_from_db()
    assert (job.status, job.processed) == (Status.RUNNING, 2)
    assert User.objects.filter(portal_account=account).count() == 2
    [new_ticket] = tickets
    assert tasks.run_import(job.pk, batch_size=2, lease=new_ticket) == Status.DONE
    assert_every_row_imported_once(job.pk, account, contact_ids)


# --- Planner statistics after a bulk load (PostgreSQL) ---


def last_analyze(model):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT last_analyze FROM pg_stat_user_tables WHERE relid = %s::regclass",
            [model._meta.db_table],
        )
        return cursor.fetchone()[0]


@pytest.fixture
def without_autovacuum():
    """Autovacuum off for the tables a load fills, as on a server where it is behind: only the
    load itself may bring their statistics up to date. The table starts analysed with another
    account's contacts, as a production table is when a new account arrives."""
    tables = [Contact._meta.db_table, User._meta.db_table]
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    older = PortalAccountFactory()
    Contact.objects.bulk_create(
        [
            Contact(portal_account=older, name=f"Old {i}", email=f"o{i}@example.com")
            for i in range(50)
        ]
    )
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE {table}")
    yield
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ALTER TABLE {table} RESET (autovacuum_enabled)")


def contacts_file_job(account, contact_ids):
    lines = [
        "ContactId,Name,Email",
        *(f"{c},Person {i},p{i}@example.com" for i, c in enumerate(contact_ids)),
    ]
    job = ImportJob(
        portal_account=account,
        target=ImportJob.Target.CONTACTS,
        original_filename="contacts.csv",
        status=Status.VALIDATED,
    )
    job.source_file.save("contacts.csv", ContentFile("\n".join(lines).encode()), save=False)
    job.save()
    return job


def lookup_plan(account, contact_ids):
    """EXPLAIN of the query the portal-user import looks a batch's contacts up with."""
    checker = portal_users.RowChecker(account, portal_users.normalised_options({}))
    rows = [
        (line, {"contact_id": c, "role": "Partner User"}) for line, c in enumerate(contact_ids, 2)
    ]
    with CaptureQueriesContext(connection) as queries:
        batch = checker.load_batch(rows)
    assert len(batch.by_contact_id) == len(contact_ids)
    [lookup] = [
        query["sql"] for query in queries.captured_queries if "contacts_contact" in query["sql"]
    ]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + lookup)
        return "\n".join(row[0][:160] for row in cursor.fetchall())  # the ids, cut short


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_contacts_load_is_analysed_so_the_user_import_right_after_is_planned_for_its_size(
    without_autovacuum,
):
    account = PortalAccountFactory(partner_licenses=5000)
    Role.objects.create(portal_account=account, name="Partner User", user_type="partner")
    contact_ids = [f"N{i:018d}" for i in range(3000)]
    analysed_before = last_analyze(Contact)

    contacts_import.apply(contacts_file_job(account, contact_ids), batch_size=500)

    assert Contact.objects.filter(portal_account=account).count() == 3000
    assert last_analyze(Contact) > analysed_before, "the load did not analyse what it changed"
    # The planner knows the account's size (without the analysis it believed 1 contact)...
    assert planner_statistics.estimated_rows(Contact, account.pk) > 1500
    # ... and plans the import's 1,000-row lookups for it: no nested loop re-reading the batch's
    # ids for each of the account's contacts (which took 60 s a batch at 50,000 contacts).
    plan = lookup_plan(account, contact_ids[:1000])
    assert "Nested Loop" not in plan, plan
    job = make_job(account, contact_ids)
    portal_users.apply(job, batch_size=1000)
    assert_every_row_imported_once(job.pk, account, contact_ids)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_large_sync_batch_into_a_new_account_is_analysed(without_autovacuum):
    account = PortalAccountFactory()
    analysed_before = last_analyze(Contact)
    items = [
        {"contact_id": f"S{i:018d}", "name": f"Synced {i}", "email": f"s{i}@example.com"}
        for i in range(1000)
    ]

    result = sync.upsert_contacts(account, items)

    assert result.counts["created"] == 1000
    assert last_analyze(Contact) > analysed_before
    assert planner_statistics.estimated_rows(Contact, account.pk) > 500
    # A batch that changes little does not analyse again.
    analysed = last_analyze(Contact)
    sync.upsert_contacts(account, items[:10])
    assert last_analyze(Contact) == analysed


# --- A real worker killed or paused in the middle of an import (Redis, PostgreSQL) ---

ROWS = 4000
BATCH = 20  # 200 batches: the kill lands in the middle
STALL_SECONDS = 3
TASK_RECEIVED = re.compile(r"Task imports\.tasks\.run_import\[[0-9a-f-]+\] received")
TASK_ENDED = re.compile(r"Task imports\.tasks\.run_import\[[0-9a-f-]+\] (succeeded|retry)")


class ImportWorker(Worker):
    """A worker for the import: this test's database and media folder, batches of BATCH rows,
    a job stalled after STALL_SECONDS; with `beat_schedule`, Celery beat runs inside it and
    sweeps for stalled imports every second (in production: every minute, after 3 minutes)."""

    name = "import-test"

    def __init__(self, log_path, *, beat_schedule=None):
        super().__init__(log_path, email_port=25)  # activation emails are off: none is sent
        self.beat_schedule = beat_schedule
        self.env.update(
            {
                "MEDIA_ROOT": str(settings.MEDIA_ROOT),
                "IMPORT_BATCH_SIZE": str(BATCH),
                "IMPORT_STALL_MINUTES": str(STALL_SECONDS / 60),
                "IMPORT_STALL_SWEEP_SECONDS": "1",
                # The "received" lines, which the tests count against the ended ones.
                "CELERY_RECEIVED_LOG_LEVEL": "INFO",
            }
        )

    def command(self):
        # No -Q (every queue the settings declare, the import's and the sweep's among them).
        beat = ["--beat", "--schedule", str(self.beat_schedule)] if self.beat_schedule else []
        return [*super().command(), *beat]


def forget_unacked_imports(redis_client):
    """A killed worker's message stays in Redis' unacked set, to be handed out again after the
    visibility timeout (6 h): take this test's out, so no later worker on this database gets
    it."""
    for tag, raw in redis_client.hgetall("unacked").items():
        try:
            task = json.loads(raw)[0]["headers"]["task"]
        except (ValueError, KeyError, IndexError, TypeError):
            continue
        if task.startswith("imports.tasks."):
            redis_client.hdel("unacked", tag)
            redis_client.zrem("unacked_index", tag)


@pytest.fixture
def import_workers(request, transactional_db, tmp_path):
    redis_client = request.getfixturevalue("broker")  # tasks go to Redis, the queue is purged
    workers = []

    def start(*, beat=False):
        worker = ImportWorker(
            tmp_path / f"worker-{len(workers)}.log",
            beat_schedule=tmp_path / "beat-schedule" if beat else None,
        )
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        if worker.process is not None and worker.process.poll() is None:
            worker.process.send_signal(signal.SIGCONT)  # a paused worker cannot shut down
        worker.stop()
    forget_unacked_imports(redis_client)


@pytest.fixture
def queued_import(request, transactional_db):
    """A 4,000-row portal-user import started as the console starts it: running, its task with
    its ticket in the broker."""
    request.getfixturevalue("broker")
    account, contact_ids = seed(ROWS)
    job = make_job(account, contact_ids)
    assert tasks.queue_run(job.pk, running(job))
    return account, contact_ids, job


def processed(job):
    return ImportJob.objects.values_list("processed", flat=True).get(pk=job.pk)


def is_done(job):
    return ImportJob.objects.filter(pk=job.pk, status=Status.DONE).exists()


def in_the_middle(worker, job):
    """Wait until a few batches are committed, closely (a batch takes milliseconds)."""
    deadline = time.monotonic() + 30
    while processed(job) < 10 * BATCH:
        assert worker.process.poll() is None, worker.output()
        assert time.monotonic() < deadline, f"no progress\n{worker.output()}"
        time.sleep(0.005)


def in_a_transaction_now():
    """Whether the worker's database session sits in an open transaction (the test's own
    session is the only other one on this database)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state = 'idle in transaction'"
        )
        return cursor.fetchone()[0] > 0


def pause_inside_a_batch(worker):
    """SIGSTOP the worker while a batch's transaction is open: it holds the account's row lock
    and uncommitted users, the hardest moment for the run that takes over (it must not wait
    for ever, nor commit those users a second time)."""
    for _attempt in range(500):
        worker.process.send_signal(signal.SIGSTOP)
        time.sleep(0.02)  # a statement under way ends; the session then waits for the worker
        if in_a_transaction_now():
            return
        worker.process.send_signal(signal.SIGCONT)
        time.sleep(0.003)
    pytest.fail("The worker was never caught inside a batch.")


@pytest.mark.worker
def test_an_import_whose_worker_is_killed_is_resumed_on_a_fresh_worker_without_a_hand_on_it(
    queued_import, import_workers
):
    account, contact_ids, job = queued_import
    first = import_workers()
    in_the_middle(first, job)

    first.process.send_signal(signal.SIGKILL)  # no shutdown, no ack, no error handling
    first.process.wait()
    killed_at = processed(job)
    assert 0 < killed_at < ROWS, "the kill did not land in the middle of the import"
    assert ImportJob.objects.get(pk=job.pk).status == Status.RUNNING  # as the issue saw it

    second = import_workers(beat=True)  # beat's sweep finds the stalled job and hands it out
    second.wait_for("the resumed import to finish", lambda: is_done(job))

    assert_every_row_imported_once(job.pk, account, contact_ids)
    assert f"Import job {job.pk} stalled" in second.output()


@pytest.mark.worker
def test_a_paused_worker_that_wakes_up_after_its_import_was_resumed_writes_nothing(
    queued_import, import_workers
):
    account, contact_ids, job = queued_import
    first = import_workers()
    in_the_middle(first, job)

    pause_inside_a_batch(first)  # alive, holding its task and a batch's locks
    second = import_workers(beat=True)
    second.wait_for("the resumed import to finish", lambda: is_done(job))
    job = assert_every_row_imported_once(job.pk, account, contact_ids)
    with job.success_file.open("rb") as file:
        success_file = file.read()

    first.process.send_signal(signal.SIGCONT)
    # It goes on where it was paused: its next write meets the other run's token, or its
    # connection, ended by PostgreSQL while it hung in a transaction, fails and its retry
    # meets the token. Either way it stops; wait until every run_import task has ended.

    def every_task_ended():
        logs = first.output() + second.output()
        received, ended = len(TASK_RECEIVED.findall(logs)), len(TASK_ENDED.findall(logs))
        return TASK_ENDED.search(first.output()) and received == ended

    first.wait_for("the woken worker's task to end", every_task_ended)

    # PostgreSQL ended the session it hung in (its retry met the token), or its next write met
    # the other run's token first: which of the two depends on how long it hung.
    assert "database gone" in first.output() or "held by another run now" in first.output()
    assert first.process.poll() is None  # alive and well, just no longer the job's
    assert_every_row_imported_once(job.pk, account, contact_ids)
    with job.success_file.open("rb") as file:
        assert file.read() == success_file
