"""Two admins racing for the last license seat cannot both win.

PostgreSQL only: SQLite lets one writer at a time into the whole database, so it would pass
even without the row lock these tests are about. Each racer runs on its own thread, and so
on its own database connection and transaction, as two web requests would."""

import threading
import time

import pytest
from django.db import connection, transaction

from accounts import licenses, lifecycle
from accounts.errors import NoLicensesLeft
from accounts.models import User, UserState, UserType
from tests.factories import ContactFactory, PortalAccountFactory, PortalUserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# Generous: only a broken lock (a thread waiting for ever) should ever get near it.
TIMEOUT = 10


def backend_pid():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


class Racer(threading.Thread):
    """One admin's request: runs `call` on its own connection and keeps the outcome."""

    def __init__(self, call, *, barrier=None):
        super().__init__(daemon=True)
        self.call = call
        self.barrier = barrier
        self.pid = None
        self.connected = threading.Event()
        self.result = None
        self.error = None

    def run(self):
        try:
            self.pid = backend_pid()
            self.connected.set()
            if self.barrier is not None:
                self.barrier.wait(TIMEOUT)
            self.result = self.call()
        except BaseException as error:  # handed to the test thread, which asserts on it
            self.error = error
        finally:
            self.connected.set()
            # Threads do not get Django's request_finished cleanup; an open connection would
            # also stop the test database from being flushed and dropped.
            connection.close()


def race(*calls):
    """Start every call at the same moment and wait for all of them."""
    barrier = threading.Barrier(len(calls))
    racers = [Racer(call, barrier=barrier) for call in calls]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(TIMEOUT)
        assert not racer.is_alive(), "a racer is stuck: deadlock or a lock never released"
    return racers


def first_holds_the_seat_while_second_asks(first, second):
    """Force the interleaving a race can only hope for: `first` has claimed the seat but not
    committed when `second` asks for it. `first` runs in an outer transaction that stays open
    until PostgreSQL reports `second` waiting on one of its locks; only then does it commit."""
    holding = threading.Event()
    release = threading.Event()

    def hold():
        with transaction.atomic():
            result = first()
            holding.set()
            if not release.wait(TIMEOUT):
                raise TimeoutError("the test never let the first request commit")
        return result

    first_racer = Racer(hold)
    second_racer = Racer(second)
    try:
        first_racer.start()
        deadline = time.monotonic() + TIMEOUT
        while not holding.wait(0.01):
            if not first_racer.is_alive() or time.monotonic() > deadline:
                pytest.fail(f"The first request never got its seat: {outcome(first_racer)}")
        second_racer.start()
        assert second_racer.connected.wait(TIMEOUT)
        wait_until_blocked(second_racer, by=first_racer.pid)
    finally:
        # Even when the test fails: a transaction left open would hang the database flush.
        release.set()
        for racer in (first_racer, second_racer):
            if racer.ident is not None:
                racer.join(TIMEOUT)
    for racer in (first_racer, second_racer):
        assert not racer.is_alive(), "a racer is stuck: deadlock or a lock never released"
    return first_racer, second_racer


def wait_until_blocked(racer, *, by):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if not racer.is_alive():
            pytest.fail(
                "The second request never waited for the first one's seat "
                f"({outcome(racer)}): the seat check does not lock."
            )
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_blocking_pids(%s)", [racer.pid])
            if by in cursor.fetchone()[0]:
                return
        time.sleep(0.01)
    pytest.fail(f"The second request was not blocked by the first within {TIMEOUT}s.")


def outcome(racer):
    return f"raised {racer.error!r}" if racer.error else f"returned {racer.result!r}"


def winner_and_loser(racers):
    winners = [racer for racer in racers if racer.error is None]
    losers = [racer for racer in racers if racer.error is not None]
    assert len(winners) == 1, f"expected one winner: {[outcome(r) for r in racers]}"
    [loser] = losers
    assert isinstance(loser.error, NoLicensesLeft), repr(loser.error)
    return winners[0].result, loser.error


def customer_seats_used(account):
    return licenses.seats_used(account, UserType.CUSTOMER)


@pytest.fixture
def account():
    return PortalAccountFactory(name="Acme Portal", slug="acme", customer_licenses=1)


@pytest.fixture
def contacts(account):
    return [
        ContactFactory(portal_account=account, name=name, email=f"{name.lower()}@example.com")
        for name in ("Grace", "Alan")
    ]


def inviting(account, role, by, contact):
    return lambda: lifecycle.invite(
        account,
        user_type=UserType.CUSTOMER,
        role=role,
        by=by,
        contact=contact,
        send_email=False,
    )


@pytest.mark.parametrize("seats_taken", [0, 2], ids=["no-users-yet", "one-seat-of-three-left"])
def test_two_invites_for_the_last_seat_one_wins(
    account, customer_role, technician, contacts, seats_taken
):
    account.customer_licenses = seats_taken + 1
    account.save(update_fields=["customer_licenses"])
    for state in [UserState.ENABLED, UserState.UNCONFIRMED][:seats_taken]:
        PortalUserFactory(
            portal_account=account, user_type=UserType.CUSTOMER, role=customer_role, state=state
        )
    # A disabled user holds no seat, so it must not make the race fail for both.
    PortalUserFactory(
        portal_account=account,
        user_type=UserType.CUSTOMER,
        role=customer_role,
        state=UserState.DISABLED,
    )

    racers = race(*(inviting(account, customer_role, technician, c) for c in contacts))

    winner, error = winner_and_loser(racers)
    limit = seats_taken + 1
    assert str(error) == f"No Customer licenses left: {limit} of {limit} in use."
    assert User.objects.filter(contact__in=contacts).get() == winner
    assert winner.state == UserState.UNCONFIRMED
    assert customer_seats_used(account) == limit


def test_an_invite_waiting_on_the_seat_lock_sees_the_seat_taken(
    account, customer_role, technician, contacts
):
    grace, alan = contacts
    first, second = first_holds_the_seat_while_second_asks(
        inviting(account, customer_role, technician, grace),
        inviting(account, customer_role, technician, alan),
    )

    assert first.error is None, outcome(first)
    assert isinstance(second.error, NoLicensesLeft), outcome(second)
    assert str(second.error) == "No Customer licenses left: 1 of 1 in use."
    assert User.objects.filter(contact__in=contacts).get().contact == grace
    assert customer_seats_used(account) == 1


@pytest.fixture
def two_disabled(account, customer_role):
    """One seat of two left, two disabled users who each want it back."""
    account.customer_licenses = 2
    account.save(update_fields=["customer_licenses"])
    PortalUserFactory(portal_account=account, user_type=UserType.CUSTOMER, role=customer_role)
    return [
        PortalUserFactory(
            portal_account=account,
            user_type=UserType.CUSTOMER,
            role=customer_role,
            state=UserState.DISABLED,
            name=name,
        )
        for name in ("Grace", "Alan")
    ]


def enabling(user, by):
    return lambda: lifecycle.enable(user, by=by)


def test_two_enables_for_the_last_seat_one_wins(account, technician, two_disabled):
    racers = race(*(enabling(user, technician) for user in two_disabled))

    winner, error = winner_and_loser(racers)
    assert str(error) == "No Customer licenses left: 2 of 2 in use."
    states = dict(
        User.objects.filter(pk__in=[u.pk for u in two_disabled]).values_list("pk", "state")
    )
    loser_pk = next(u.pk for u in two_disabled if u.pk != winner.pk)
    assert states == {winner.pk: UserState.ENABLED, loser_pk: UserState.DISABLED}
    assert customer_seats_used(account) == 2


def test_an_enable_waiting_on_the_seat_lock_sees_the_seat_taken(account, technician, two_disabled):
    grace, alan = two_disabled
    first, second = first_holds_the_seat_while_second_asks(
        enabling(grace, technician), enabling(alan, technician)
    )

    assert first.error is None, outcome(first)
    assert isinstance(second.error, NoLicensesLeft), outcome(second)
    assert str(second.error) == "No Customer licenses left: 2 of 2 in use."
    grace.refresh_from_db()
    alan.refresh_from_db()
    assert (grace.state, alan.state) == (UserState.ENABLED, UserState.DISABLED)
    assert customer_seats_used(account) == 2
