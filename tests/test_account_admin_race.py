"""Two people moving the account admin seat at the same moment: one of them wins, the other is
told to reload (409) and changes nothing; nobody ever gets a server error.

The first test runs anywhere: it makes the other request's change land between the seat
holder's lookup and the write, as a race would. The others are PostgreSQL only (as in
tests/test_license_race.py): each request runs on its own thread, connection and transaction."""

import pytest
from django.db.models.signals import pre_save
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent, User
from tests.conftest import console_sign_in
from tests.factories import PortalUserFactory
from tests.test_license_race import first_holds_the_seat_while_second_asks, outcome, race

RELOAD = "Someone else changed the account admin at the same time. Reload the page and try again."
SEAT_EVENTS = ("make_account_admin", "remove_account_admin")


def make_admin_url(user):
    return reverse("user-action", args=[user.portal_account.slug, user.pk, "make-admin"])


def admins(account):
    return set(User.objects.filter(portal_account=account, is_account_admin=True))


def seat_events():
    return sorted(
        AuditEvent.objects.filter(action__in=SEAT_EVENTS).values_list("action", "subject_user")
    )


@pytest.fixture
def candidates(account, partner_role):
    return [
        PortalUserFactory(portal_account=account, role=partner_role, name=name)
        for name in ("Pia Portal", "Bob Portal")
    ]


def console_client(person):
    return console_sign_in(Client(), person)


def test_a_seat_move_overtaken_by_another_is_409_and_changes_nothing(
    admin_client, account, account_admin, candidates
):
    pia, bob = candidates

    def bob_takes_the_seat_first(sender, instance, update_fields=None, **kwargs):
        # Another admin's request, committed just before this one writes: the seat is Bob's.
        if instance.pk == pia.pk and instance.is_account_admin:
            User.objects.filter(portal_account=account).update(is_account_admin=False)
            User.objects.filter(pk=bob.pk).update(is_account_admin=True)

    pre_save.connect(bob_takes_the_seat_first, sender=User)
    try:
        response = admin_client.post(make_admin_url(pia))
    finally:
        pre_save.disconnect(bob_takes_the_seat_first, sender=User)

    assert response.status_code == 409
    assert RELOAD in response.content.decode()
    assert admins(account) == {account_admin}  # this request's changes are all rolled back
    assert seat_events() == []


# --- PostgreSQL: two requests at once ---


def posting(client, user):
    return lambda: client.post(make_admin_url(user))


@pytest.fixture
def two_admins(mssp_admin, technician):
    """Two MSSP staff, each in their own browser session."""
    return console_client(mssp_admin), console_client(technician)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("has_admin", [True, False], ids=["seat-held", "seat-empty"])
def test_a_seat_move_waiting_on_another_is_409(
    account, partner_role, candidates, two_admins, has_admin
):
    holder = PortalUserFactory(
        portal_account=account, role=partner_role, name="Ada Admin", is_account_admin=has_admin
    )
    pia, bob = candidates
    mia_client, theo_client = two_admins

    first, second = first_holds_the_seat_while_second_asks(
        posting(mia_client, pia), posting(theo_client, bob)
    )

    assert first.error is None, outcome(first)
    assert second.error is None, outcome(second)
    assert first.result.status_code == 302
    assert second.result.status_code == 409
    assert RELOAD in second.result.content.decode()
    assert admins(account) == {pia}
    removed = [("remove_account_admin", holder.pk)] if has_admin else []
    assert seat_events() == sorted([("make_account_admin", pia.pk), *removed])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_seat_moves_at_once_never_fail_with_a_server_error(
    account, account_admin, candidates, two_admins
):
    racers = race(*(posting(c, user) for c, user in zip(two_admins, candidates, strict=True)))

    assert all(racer.error is None for racer in racers), [outcome(r) for r in racers]
    statuses = sorted(racer.result.status_code for racer in racers)
    # Served in turn, both moves are fine; overlapping, the later one is told to reload.
    assert statuses in ([302, 302], [302, 409])
    for racer in racers:
        if racer.result.status_code == 409:
            assert RELOAD in racer.result.content.decode()
    [admin] = admins(account)
    assert admin in candidates
