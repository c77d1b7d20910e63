"""The sending pace: a portal account sends at most OUTBOX_RATE_PER_ACCOUNT_PER_MINUTE emails a
minute, spread evenly; the rest wait for their turn without counting as failures.

The clock is frozen (django.utils.timezone.now) at noon; the pace counters live in the test
cache (locmem), emptied before every test. A limit of 6 a minute gives one place every 10 s."""

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from celery.exceptions import Retry
from django.core import mail

from accounts.models import EmailKind, LoginToken, OutboxEmail
from mail import delivery, outbox
from mail.tasks import requeue_unsent, send_outbox_email
from tests.factories import PortalUserFactory

NOON = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self):
        self.now = NOON

    def set(self, **since_noon):
        self.now = at(**since_noon)


@pytest.fixture
def clock():
    clock = Clock()
    with mock.patch("django.utils.timezone.now", side_effect=lambda: clock.now):
        yield clock


@pytest.fixture
def limit(settings):
    def set_limit(per_minute):
        settings.OUTBOX_RATE_PER_ACCOUNT_PER_MINUTE = per_minute

    return set_limit


def at(**since_noon):
    return NOON + timedelta(**since_noon)


def ms(moment):
    return int(moment.timestamp() * 1000)


def login_links(account, count):
    return [
        outbox.queue_email(PortalUserFactory(portal_account=account), EmailKind.LOGIN_LINK)
        for _ in range(count)
    ]


def send(row, **kwargs):
    """As the worker's task does: at the portal account's pace."""
    return delivery.deliver(row.pk, pace=True, **kwargs)


def deferred(row, **kwargs):
    with pytest.raises(delivery.SendDeferred) as waiting:
        send(row, **kwargs)
    return waiting.value


def turns(rows, clock):
    """When each row leaves: now if it is sent, else the turn it waits for."""
    moments = []
    for row in rows:
        try:
            send(row)
            moments.append(clock.now)
        except delivery.SendDeferred as waiting:
            moments.append(datetime.fromtimestamp(waiting.slot / 1000, tz=UTC))
    return moments


def test_an_account_sends_its_limit_a_minute_evenly_and_the_next_email_waits_without_failing(
    account, clock, limit
):
    limit(6)
    rows = login_links(account, 7)

    assert turns(rows, clock) == [at(seconds=s) for s in (0, 10, 20, 30, 40, 50, 60)]

    assert len(mail.outbox) == 1
    row = OutboxEmail.objects.get(pk=rows[6].pk)
    assert (row.status, row.attempts, row.last_error) == ("pending", 0, "")
    assert row.next_attempt_at == at(minutes=1)
    # No link was minted for an email that did not leave.
    assert not LoginToken.objects.filter(user=row.user).exists()


def test_at_120_a_minute_a_backlog_leaves_two_a_second_and_120_in_its_first_minute(
    account, clock, limit
):
    limit(120)
    clock.set(seconds=0.3)
    rows = login_links(account, 200)

    moments = turns(rows, clock)

    assert moments[:2] == [at(seconds=0.3)] * 2  # the current second's places: at once
    assert moments[2:6] == [at(seconds=1), at(seconds=1.5), at(seconds=2), at(seconds=2.5)]
    assert sum(moment < at(minutes=1) for moment in moments) == 120
    assert moments[120] == at(minutes=1)
    assert len(mail.outbox) == 2


def test_a_busy_account_does_not_hold_up_another_account(account, other_account, clock, limit):
    limit(6)
    busy = login_links(account, 2)
    send(busy[0])
    deferred(busy[1])

    [other] = login_links(other_account, 1)
    assert send(other) is True
    assert [message.to for message in mail.outbox] == [[busy[0].to_email], [other.to_email]]


def test_a_turn_reserved_is_used_once_and_later_emails_queue_behind_it(account, clock, limit):
    limit(6)
    rows = login_links(account, 3)
    send(rows[0])
    turn = deferred(rows[1]).slot
    assert deferred(rows[2]).slot == ms(at(seconds=20))

    clock.set(seconds=10)
    assert send(rows[1], slot=turn) is True
    [later] = login_links(account, 1)
    assert deferred(later).slot == ms(at(seconds=30))


def test_once_the_backlog_has_left_an_email_leaves_at_once_again(account, clock, limit):
    limit(6)
    rows = login_links(account, 3)
    turns(rows, clock)

    clock.set(minutes=1)
    [later] = login_links(account, 1)
    assert send(later) is True


def test_a_task_back_too_early_waits_again_for_the_same_turn(account, clock, limit):
    limit(6)
    rows = login_links(account, 3)
    send(rows[0])
    turn = deferred(rows[1]).slot

    clock.set(seconds=5)
    again = deferred(rows[1], slot=turn)
    assert (again.slot, again.countdown) == (turn, 5)
    # Waiting again took no second place.
    assert deferred(rows[2]).slot == ms(at(seconds=20))


def test_a_task_back_after_its_turn_has_passed_takes_a_new_turn(account, clock, limit):
    limit(6)
    rows = login_links(account, 3)
    send(rows[0])
    turn = deferred(rows[1]).slot  # 12:00:10, but the worker was busy

    clock.set(seconds=25)
    send(rows[2])  # takes the place of 12:00:20-12:00:30
    assert deferred(rows[1], slot=turn).slot == ms(at(seconds=30))


def test_emails_already_sent_or_cancelled_take_no_place(account, clock, limit):
    limit(6)
    sent, cancelled, fresh = login_links(account, 3)
    OutboxEmail.objects.filter(pk=sent.pk).update(status=OutboxEmail.Status.SENT)
    OutboxEmail.objects.filter(pk=cancelled.pk).update(status=OutboxEmail.Status.CANCELLED)

    assert send(sent) is False
    assert send(cancelled) is False
    assert send(fresh) is True


def test_the_worker_re_schedules_a_waiting_email_for_its_turn(account, clock, limit):
    limit(6)
    rows = login_links(account, 2)
    send(rows[0])

    retry = mock.patch.object(send_outbox_email, "retry", side_effect=lambda **kw: Retry())
    send_outbox_email.push_request(is_eager=False)
    try:
        with retry as rescheduled, pytest.raises(Retry):
            send_outbox_email.run(rows[1].pk)
    finally:
        send_outbox_email.pop_request()

    rescheduled.assert_called_once_with(
        args=(rows[1].pk,), kwargs={"slot": ms(at(seconds=10))}, countdown=10, exc=None
    )
    row = OutboxEmail.objects.get(pk=rows[1].pk)
    assert (row.status, row.attempts, row.last_error) == ("pending", 0, "")


def test_tasks_run_eagerly_skip_the_pace(account, clock, limit):
    """No broker (the embedded demo): nobody would run a deferred task later, so all leave."""
    limit(6)
    rows = login_links(account, 3)
    assert [send_outbox_email.delay(row.pk).get() for row in rows] == [True, True, True]
    assert len(mail.outbox) == 3


def test_the_sweep_leaves_a_waiting_email_to_its_task_until_long_after_its_turn(
    account, clock, limit, settings
):
    limit(6)
    rows = login_links(account, 31)
    turns(rows, clock)
    last = rows[-1]  # its turn: 12:05
    # Queued long ago, as a row at the end of a long backlog is.
    OutboxEmail.objects.filter(pk=last.pk).update(queued_at=at(hours=-1))

    clock.set(minutes=5, seconds=1)
    assert last.pk not in requeue_unsent()
    clock.now = at(minutes=5) + settings.OUTBOX_REQUEUE_AFTER + timedelta(seconds=1)
    assert last.pk in requeue_unsent()


def test_a_limit_of_zero_turns_the_pace_off(account, clock, limit):
    limit(0)
    rows = login_links(account, 3)
    assert [send(row) for row in rows] == [True, True, True]


def test_a_batch_takes_its_turns_as_one_email_after_another_would(account, clock, limit):
    from mail import send_pace

    limit(120)
    clock.set(seconds=0.3)
    together = send_pace.take_turns(account.pk, 5, "bulk")
    apart = [send_pace.take_turn(account.pk, None, "urgent") for _ in range(5)]

    assert [turn.starts for turn in together] == [turn.starts for turn in apart]
    assert [turn.starts for turn in together] == [
        at(seconds=0.3),
        at(seconds=0.3),
        at(seconds=1),
        at(seconds=1.5),
        at(seconds=2),
    ]
    limit(0)
    assert all(turn.now for turn in send_pace.take_turns(account.pk, 3, "bulk"))
