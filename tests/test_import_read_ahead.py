"""An import reads, looks up and checks its next batch in a thread while the current one is
written (imports.read_ahead, PostgreSQL): every row's outcome is the one it has without, an error
of the file stops the run after the batches before it, and the thread's connection is closed
when the run ends."""

import threading
import time

import pytest
from django.core.files.base import ContentFile
from django.db import connection

from accounts import lifecycle
from accounts.models import Role, User
from contacts.models import Contact
from imports import portal_users, tasks
from imports.models import ImportJob
from tests.test_import_self_healing import result_rows, running, seed

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def lookups(monkeypatch):
    """The thread and the PostgreSQL backend of each batch's contact lookup."""
    made = []
    load_batch = portal_users.RowChecker.load_batch

    def recording(checker, rows):
        batch = load_batch(checker, rows)
        made.append((threading.current_thread().name, connection.connection.info.backend_pid))
        return batch

    monkeypatch.setattr(portal_users.RowChecker, "load_batch", recording)
    return made


def job_for(account, lines, **fields):
    job = ImportJob(
        portal_account=account,
        original_filename="users.csv",
        options={"send_activation": True, "user_type": "partner"},
        status=ImportJob.Status.VALIDATED,
    )
    job.source_file.save("users.csv", ContentFile("\n".join(lines).encode()), save=False)
    job.save()
    return job, running(job, **fields)


def tricky_file(account, contact_ids):
    """30 rows in batches of 10: a duplicate of line 6 in the next batch, a contact that has a
    user already, an unknown id, and a role that does not exist."""
    lifecycle.invite(
        account,
        role=Role.objects.get(portal_account=account),
        by=None,
        contact=Contact.objects.get(contact_id=contact_ids[21]),
        send_email=False,
    )
    rows = [f"{contact_id},Partner User" for contact_id in contact_ids[:30]]
    rows[14] = f"{contact_ids[4]},Partner User"  # line 16 repeats line 6
    rows[24] = "C9999999999999999999,Partner User"
    rows[27] = f"{contact_ids[27]},Nobody Role"
    return ["ContactId,Role", *rows]


def outcomes(job):
    job.refresh_from_db()
    created = [row[0] for row in result_rows(job.success_file)[1]]
    failed = [(row[0], row[3]) for row in result_rows(job.failure_file)[1]]
    return job.status, job.created, job.failed, created, failed


def run(job, ticket):
    return tasks.run_import.apply(args=(job.pk,), kwargs={"batch_size": 10, "lease": ticket})


def backend_gone(pid):
    """Whether the backend has ended: PostgreSQL lists a closed connection's backend a moment
    longer, so look again for up to 5 s."""
    for _ in range(100):
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
            if cursor.fetchone()[0] == 0:
                return True
        time.sleep(0.05)
    return False


def test_the_next_batch_is_checked_in_a_thread_and_every_row_ends_as_without_it(settings, lookups):
    account, contact_ids = seed(30)
    job, ticket = job_for(account, tricky_file(account, contact_ids))

    assert run(job, ticket).get() == ImportJob.Status.DONE

    status, created, failed, created_ids, failures = outcomes(job)
    # The three lookups in the thread, over one connection of its own, closed with the run.
    assert [name for name, _pid in lookups] == ["import-read-ahead_0"] * 3
    assert len({pid for _name, pid in lookups}) == 1
    assert lookups[0][1] != connection.connection.info.backend_pid
    assert backend_gone(lookups[0][1])

    settings.IMPORT_READ_AHEAD = False
    other, other_ids = seed(30)
    lookups.clear()
    job, ticket = job_for(other, tricky_file(other, other_ids))
    assert run(job, ticket).get() == ImportJob.Status.DONE
    assert [name for name, _pid in lookups] == ["MainThread"] * 3
    same_ids = dict(zip(other_ids, contact_ids, strict=True))
    expected = outcomes(job)
    assert (status, created, failed) == expected[:3] == (ImportJob.Status.DONE, 26, 4)
    assert created_ids == [same_ids.get(c, c) for c in expected[3]]
    assert failures == expected[4]
    assert failures == [
        ("16", "duplicate_row"),
        ("23", "user_exists"),
        ("26", "contact_not_found"),
        ("29", "role_not_found"),
    ]
    assert User.objects.filter(portal_account=account).count() == 27  # 26 and the one before


def test_an_error_further_in_the_file_stops_the_run_after_the_batches_before_it(lookups):
    account, contact_ids = seed(3000)
    rows = [f"{contact_id},Partner User" for contact_id in contact_ids]
    rows[2500] = rows[2500].replace(",", ",\x00")  # beyond the reader's first 64 KB
    job, ticket = job_for(account, ["ContactId,Role", *rows], total_rows=3000)

    result = tasks.run_import.apply(args=(job.pk,), kwargs={"batch_size": 500, "lease": ticket})

    assert result.get() == ImportJob.Status.FAILED
    job.refresh_from_db()
    assert job.error_message.startswith("Line 2502 contains a NUL character")
    # Every batch before the one the error is in was written, and only those.
    assert job.created == job.processed == job.last_processed_line - 1
    assert job.created % 500 == 0
    assert 0 < job.created < 2500
    assert User.objects.filter(portal_account=account).count() == job.created
    assert {name for name, _pid in lookups} == {"import-read-ahead_0"}
    assert backend_gone(lookups[0][1])


def test_the_next_batch_is_looked_up_while_the_current_one_is_written(monkeypatch, lookups):
    """The second batch's lookup happens before the first batch's writes end (the write waits
    for it), on the one connection of the thread even where connections are not kept
    (CONN_MAX_AGE 0: the thread's lasts the run)."""
    from django.db import connections

    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    account, contact_ids = seed(30)
    job, ticket = job_for(account, ["ContactId,Role", *(f"{c},Partner User" for c in contact_ids)])
    apply_batch = portal_users._apply_batch
    seen_while_writing = []

    def waiting_for_the_next_lookup(*args):
        writing = len(seen_while_writing) + 1
        deadline = time.monotonic() + 10
        while len(lookups) <= writing and time.monotonic() < deadline:
            time.sleep(0.01)
        seen_while_writing.append(len(lookups))
        return apply_batch(*args)

    monkeypatch.setattr(portal_users, "_apply_batch", waiting_for_the_next_lookup)
    assert run(job, ticket).get() == ImportJob.Status.DONE

    # While batch 1 was written, batch 2 had been looked up; while batch 2 was, batch 3.
    assert seen_while_writing == [2, 3, 3]
    assert len({pid for _name, pid in lookups}) == 1
    assert backend_gone(lookups[0][1])
    assert User.objects.filter(portal_account=account).count() == 30


def test_the_next_batch_is_planned_in_the_thread_and_written_as_planned(monkeypatch):
    """Each batch's invitations are planned (accounts.bulk_invites.plan: rules, ids, COPYs) in
    the thread, and the users written are those of the plan: their ids were drawn there."""
    from accounts import bulk_invites

    plans = []
    plan = bulk_invites.plan

    def recording(*args, **kwargs):
        made = plan(*args, **kwargs)
        plans.append((threading.current_thread().name, made))
        return made

    monkeypatch.setattr(bulk_invites, "plan", recording)
    account, contact_ids = seed(30)
    job, ticket = job_for(account, ["ContactId,Role", *(f"{c},Partner User" for c in contact_ids)])

    assert run(job, ticket).get() == ImportJob.Status.DONE

    assert [name for name, _made in plans] == ["import-read-ahead_0"] * 3
    planned = [user_id for _name, made in plans for user_id in made.writes.user_ids]
    written = (
        User.objects.filter(portal_account=account).order_by("pk").values_list("pk", flat=True)
    )
    assert planned == list(written)


def test_the_thread_prepares_in_the_callers_context():
    """Who acts (accounts.audit.acting_as) is what the caller set: the thread labels the audit
    events it prepares as the caller would."""
    from accounts import audit
    from imports import read_ahead

    account, _contact_ids = seed(1)
    event = ("invite", None, "", {}, {}, "")

    def actor_label(rows):
        row = audit.bulk_rows([event], by=None, portal_account=account)[0]
        return threading.current_thread().name, row[audit.BULK_FIELDS.index("actor_label")]

    with (
        audit.acting_as("the import command"),
        read_ahead.prepared(iter([[1], [2]]), actor_label, safe=True) as ready,
    ):
        prepared = list(ready)

    assert prepared == [("import-read-ahead_0", "the import command")] * 2


def test_one_email_in_two_adjacent_batches_fails_one_row_not_the_next_batch(monkeypatch):
    """The second batch is planned while the first is written: its plan cannot see the first's
    user of the same email, and is planned again under the lock, where that row alone fails;
    the batch still goes in bulk (found in review: it fell back to invite row by row)."""
    from accounts import bulk_invites

    calls = []
    monkeypatch.setattr(bulk_invites, "invite", lambda *a, **k: calls.append(a))
    account, contact_ids = seed(20)
    Contact.objects.filter(contact_id=contact_ids[10]).update(email="person9@example.com")
    job, ticket = job_for(account, ["ContactId,Role", *(f"{c},Partner User" for c in contact_ids)])

    assert run(job, ticket).get() == ImportJob.Status.DONE

    assert calls == []
    status, created, failed, _created_ids, failures = outcomes(job)
    assert (created, failed) == (19, 1)
    assert [line for line, _code in failures] == ["12"]
    assert User.objects.filter(portal_account=account).count() == 19
