"""The batch sender's claims: the next batch claimed ahead while one is sent (PostgreSQL, on a
connection of a thread's), rows claimed ahead handed back when the drain fails, and an older
link whose newer one was sent already cancelled at the claim (the check reads each user's
emails, whatever the statistics say)."""

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from accounts.models import EmailKind, OutboxEmail
from mail import batches, outbox, tasks
from tests.factories import PortalUserFactory
from tests.test_outbox_batches import _pending as _bulk
from tests.test_outbox_batches import _users


@pytest.fixture
def claims_ahead(monkeypatch):
    """The thread of each claim a drain makes, and the PostgreSQL backends of the claims'
    thread."""
    made = []
    made_in = set()
    claim_batch = batches.claim_batch

    def recording(lane, *, pace, size=None):
        import threading

        made.append(threading.current_thread().name)
        try:
            return claim_batch(lane, pace=pace, size=size)
        finally:
            if made[-1] != "MainThread":
                made_in.add(connection.connection.info.backend_pid)

    monkeypatch.setattr(batches, "claim_batch", recording)
    return SimpleNamespace(threads=made, backends=made_in)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_drain_claims_the_next_batch_in_a_thread_and_sends_every_row_once(
    account, settings, claims_ahead
):
    settings.OUTBOX_BATCH_SIZE = 10
    users = _users(account, 35)
    _bulk(users)

    assert tasks.drain("urgent", pace=False, later=False) == 35

    assert sorted(m.to[0] for m in mail.outbox) == sorted(user.email for user in users)
    assert set(OutboxEmail.objects.values_list("status", "attempts")) == {("sent", 1)}
    # The first claim in the drain's own thread; while each full batch is sent the next one,
    # in the claims' thread; after the last (5 rows, not full), one that finds none due.
    assert claims_ahead.threads == ["MainThread", *["outbox-claim_0"] * 3, "MainThread"]
    # One connection of the thread's for the three, closed with the drain.
    assert len(claims_ahead.backends) == 1
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
            [next(iter(claims_ahead.backends))],
        )
        assert cursor.fetchone()[0] == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_without_claims_ahead_a_drain_claims_one_batch_after_the_other(
    account, settings, claims_ahead
):
    settings.OUTBOX_BATCH_SIZE = 10
    settings.OUTBOX_CLAIM_AHEAD = False
    _bulk(_users(account, 25))

    assert tasks.drain("urgent", pace=False, later=False) == 25

    assert claims_ahead.threads == ["MainThread"] * 4
    assert len(mail.outbox) == 25


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_failed_drain_hands_the_rows_claimed_ahead_back_due_at_once(
    account, settings, monkeypatch
):
    settings.OUTBOX_BATCH_SIZE = 10
    rows = _bulk(_users(account, 25))

    def down(*args, **kwargs):
        raise ConnectionRefusedError("down")

    monkeypatch.setattr(batches, "_send", down)
    before = timezone.now()
    with pytest.raises(ConnectionRefusedError):
        tasks.drain("urgent", pace=False, later=False)

    due = {row.pk: row.next_attempt_at for row in OutboxEmail.objects.filter(status="pending")}
    assert len(due) == 25
    first_batch = [row.pk for row in rows[:10]]
    # The batch under way stays claimed, as before; the batch claimed ahead is due again now,
    # not once its claim runs out; the rest was never claimed.
    claimed_until = before + timedelta(seconds=settings.OUTBOX_CLAIM_SECONDS - 5)
    assert all(due[pk] > claimed_until for pk in first_batch)
    assert all(due[row.pk] <= timezone.now() for row in rows[10:])


@pytest.mark.django_db
def test_an_older_link_whose_newer_one_went_out_is_cancelled_at_the_claim(account):
    user = PortalUserFactory(portal_account=account)
    older = outbox.queue_email(user, EmailKind.LOGIN_LINK)
    # The newer one went out meanwhile (a retry of the older one waited, say).
    newer = OutboxEmail.objects.create(
        portal_account=account,
        user=user,
        to_email=user.email,
        kind=EmailKind.LOGIN_LINK,
        status=OutboxEmail.Status.SENT,
    )
    OutboxEmail.objects.filter(pk=older.pk).update(status=OutboxEmail.Status.PENDING)
    other = outbox.queue_email(PortalUserFactory(portal_account=account), EmailKind.LOGIN_LINK)

    assert batches.send_batch("urgent", pace=False) == 2

    assert [m.to[0] for m in mail.outbox] == [other.to_email]
    older.refresh_from_db()
    assert (older.status, older.last_error) == ("cancelled", "Replaced by a newer email.")
    assert OutboxEmail.objects.get(pk=newer.pk).status == "sent"
