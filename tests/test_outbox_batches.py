"""The batch sender (mail/batches.py): claims, the pace, urgent mail first, failures; and, with a
real worker, a SIGKILL mid-batch and a sign-in code behind 10,000 paced invitations."""

import time
from collections import Counter
from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from accounts import tokens
from accounts.models import (
    EmailKind,
    LoginToken,
    OutboxEmail,
    TokenPurpose,
    User,
    UserKind,
    UserState,
    UserType,
)
from mail import batches, outbox, tasks
from tests.factories import PortalUserFactory
from tests.test_mail_reliability import _forget_unacked
from tests.test_outbox_worker import (  # noqa: F401 (fixtures, asked for by name)
    SmtpSink,
    broker,
    free_port,
    smtp_server,
    start_worker,
)


def _users(account, count):
    """`count` enabled portal users, in one INSERT (employees: no CRM contact needed)."""
    User.objects.bulk_create(
        User(
            kind=UserKind.PORTAL,
            portal_account=account,
            user_type=UserType.EMPLOYEE,
            state=UserState.ENABLED,
            name=f"User {n}",
            email=f"user{n}@batch.example",
            # Starts with "!": an unusable password, without hashing thousands of them.
            password="!no-password",
        )
        for n in range(count)
    )
    return list(User.objects.filter(portal_account=account, email__endswith="@batch.example"))


def _pending(users, kind=EmailKind.LOGIN_LINK):
    """One pending row of `kind` a user, due now, in one INSERT (nothing handed to Celery)."""
    now = timezone.now()
    return OutboxEmail.objects.bulk_create(
        OutboxEmail(
            portal_account_id=user.portal_account_id,
            user=user,
            to_email=user.email,
            kind=kind,
            queued_at=now,
            next_attempt_at=now,
        )
        for user in users
    )


def _queue_in_bulk(users, kind):
    """As the lifecycle's bulk invite does: one INSERT, one hand-over when it commits."""
    with transaction.atomic():
        rows = _pending(users, kind)
        outbox.hand_over_on_commit([row.pk for row in rows], {kind: len(rows)})
    return rows


def _links(account, count, kind=EmailKind.LOGIN_LINK):
    return [
        outbox.queue_email(PortalUserFactory(portal_account=account), kind) for _ in range(count)
    ]


# --- The rules, eagerly (no worker) ---


def test_a_batch_sends_its_rows_over_one_session_with_working_links(account):
    rows = _links(account, 3)

    assert batches.send_batch("urgent", pace=False) == 3

    assert sorted(m.to[0] for m in mail.outbox) == sorted(row.to_email for row in rows)
    assert set(OutboxEmail.objects.values_list("status", "attempts")) == {("sent", 1)}
    # The bulk-minted link is the one a row minted on its own would carry.
    row = rows[0]
    secret = tokens.issue_for_email(OutboxEmail.objects.get(pk=row.pk), TokenPurpose.LOGIN_EMAIL)
    message = next(m for m in mail.outbox if m.to == [row.to_email])
    assert secret in message.body
    assert tokens.peek(secret, TokenPurpose.LOGIN_EMAIL, account).user_id == row.user_id
    assert LoginToken.objects.count() == 3


def test_a_row_cancelled_after_the_claim_is_not_sent(account, monkeypatch):
    first, second = _links(account, 2)
    send_one = batches._send_one

    def cancel_the_second_first(row, *rest):
        if row.pk == first.pk:
            outbox.cancel_pending(second.user, reason="Disabled.")
        return send_one(row, *rest)

    monkeypatch.setattr(batches, "_send_one", cancel_the_second_first)
    batches.send_batch("urgent", pace=False)

    assert [m.to[0] for m in mail.outbox] == [first.to_email]
    assert OutboxEmail.objects.get(pk=second.pk).status == "cancelled"


def test_rows_not_due_and_rows_of_the_other_lane_are_left(account):
    later, now_due = _links(account, 2)
    invitation = _links(account, 1, EmailKind.INVITATION)[0]
    OutboxEmail.objects.filter(pk=later.pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=1)
    )

    assert batches.send_batch("urgent", pace=False) == 1

    assert [m.to[0] for m in mail.outbox] == [now_due.to_email]
    assert OutboxEmail.objects.get(pk=invitation.pk).status == "pending"


def test_the_pace_defers_a_batch_without_failing_it_and_the_turn_is_kept(account, settings, clock):
    # A still clock: on the real one, a batch that crossed a second's end left its next turn
    # (the next second) in the past by the time of the last assertion.
    settings.OUTBOX_RATE_PER_ACCOUNT_PER_MINUTE = 60  # one place a second
    rows = _links(account, 3)

    assert batches.send_batch("urgent", pace=True) == 3

    assert len(mail.outbox) == 1
    waiting = OutboxEmail.objects.filter(status="pending").order_by("next_attempt_at")
    assert [(row.attempts, row.last_error) for row in waiting] == [(0, ""), (0, "")]
    assert all(row.paced_turn_at == row.next_attempt_at for row in waiting)
    assert waiting[0].next_attempt_at > timezone.now()
    assert {row.pk for row in rows} == {row.pk for row in OutboxEmail.objects.all()}


def test_a_drain_of_the_bulk_lane_sends_urgent_mail_first(account):
    _links(account, 3, EmailKind.INVITATION)
    code = _links(account, 1, EmailKind.LOGIN_CODE)[0]

    assert tasks.drain("bulk", pace=False, later=False) == 4

    assert mail.outbox[0].to == [code.to_email]
    assert len(mail.outbox) == 4


def test_a_failing_mail_server_keeps_the_error_and_hands_the_batch_back(account, settings):
    rows = _links(account, 3)
    settings.EMAIL_BACKEND = "tests.test_metrics.RefusingBackend"

    batches.send_batch("urgent", pace=False)

    first, *rest = (OutboxEmail.objects.get(pk=row.pk) for row in rows)
    assert (first.status, first.attempts) == ("pending", 1)
    assert first.last_error.startswith("ConnectionRefusedError")
    # The rest were not tried: no attempt, no error, due with the failed row's retry.
    assert [(row.attempts, row.last_error) for row in rest] == [(0, ""), (0, "")]
    assert {row.next_attempt_at for row in rest} == {first.next_attempt_at}
    assert not LoginToken.objects.filter(outbox_email_id=first.pk).exists()


def test_an_older_link_in_the_same_batch_is_replaced_by_the_newer(account):
    user = PortalUserFactory(portal_account=account)
    older = outbox.queue_email(user, EmailKind.LOGIN_LINK)
    newer = outbox.queue_email(user, EmailKind.LOGIN_LINK)

    batches.send_batch("urgent", pace=False)

    assert len(mail.outbox) == 1
    assert OutboxEmail.objects.get(pk=older.pk).status == "cancelled"
    assert OutboxEmail.objects.get(pk=newer.pk).status == "sent"


def test_one_hand_over_per_lane_and_transaction(account, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        _links(account, 3)
        _links(account, 2, EmailKind.INVITATION)
    wakes = sorted(c.lane for c in callbacks if isinstance(c, tasks._WakeOnCommit))
    assert wakes == ["bulk", "urgent"]


# --- With a real worker ---


class TimedSink(SmtpSink):
    """Keeps when each message arrived; `delay` seconds over each, as a remote relay may. It
    offers PIPELINING, as Postfix does (the sink of test_outbox_worker does not)."""

    def __init__(self, port, delay=0.0):
        super().__init__(port)
        self.delay = delay
        self.arrivals = []

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            import asyncio

            await asyncio.sleep(self.delay)
        self.arrivals.append((time.time(), envelope.rcpt_tos[0]))
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def timed_sink():
    sinks = []

    def start(delay=0.0):
        sink = TimedSink(free_port(), delay)
        sink.controller.start()
        sinks.append(sink)
        return sink

    yield start
    for sink in sinks:
        sink.controller.stop()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_batch_leaves_at_most_the_message_in_flight_in_doubt(
    account, timed_sink, request
):
    redis_client = request.getfixturevalue("broker")
    start = request.getfixturevalue("start_worker")
    users = _users(account, 150)
    sink = timed_sink(delay=0.02)
    env = {
        "OUTBOX_BATCH_SIZE": "60",
        "OUTBOX_CLAIM_SECONDS": "3",
        "OUTBOX_RATE_PER_ACCOUNT_PER_MINUTE": "0",
    }
    try:
        first = start(sink.port, env=env)
        _queue_in_bulk(users, EmailKind.LOGIN_LINK)
        # In its first batch of 60.
        first.wait_for("the first batch to be under way", lambda: len(sink.arrivals) >= 25)
        first.process.kill()  # SIGKILL
        first.process.wait()
        killed_at = len(sink.arrivals)
        assert killed_at < 60
        # Two workers take over, side by side; the killed worker's batch once its claim ends.
        others = [start(sink.port, env=env) for _ in range(2)]
        others[0].wait_for(
            "every row to be sent",
            lambda: not OutboxEmail.objects.filter(status="pending").exists(),
        )
    finally:
        _forget_unacked(redis_client)

    per_recipient = Counter(to for _, to in sink.arrivals)
    assert set(per_recipient) == {user.email for user in users}  # nobody without their email
    twice = {to: count for to, count in per_recipient.items() if count > 1}
    assert len(twice) <= 1, twice  # the message in flight, and no other
    assert max(per_recipient.values()) <= 2
    assert OutboxEmail.objects.filter(status="sent").count() == 150


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_sign_in_code_leaves_within_a_second_behind_10000_paced_invitations(
    account, timed_sink, request
):
    redis_client = request.getfixturevalue("broker")
    start = request.getfixturevalue("start_worker")
    users = _users(account, 10_001)
    sink = timed_sink()
    try:
        # The default pace: two emails a second per portal account and lane.
        worker = start(sink.port, env={"OUTBOX_RATE_PER_ACCOUNT_PER_MINUTE": "120"})
        worker.wait_for("the worker to start", lambda: " ready." in worker.output())
        _queue_in_bulk(users[:10_000], EmailKind.INVITATION)
        code_for = users[-1]
        with transaction.atomic():
            outbox.queue_email(code_for, EmailKind.LOGIN_CODE)
        committed = time.time()
        arrived = worker.wait_for(
            "the sign-in code",
            lambda: next((at for at, to in sink.arrivals if to == code_for.email), None),
        )
        invitations = sum(1 for _, to in sink.arrivals if to != code_for.email)
    finally:
        _forget_unacked(redis_client)

    assert arrived - committed < 1.0
    assert invitations <= 4  # the backlog is paced, and still waiting
    assert OutboxEmail.objects.filter(kind="invitation", status="pending").count() >= 9_996
