"""`accounts.bulk_invites.plan`: a batch's invitations decided and built ahead, without the lock,
then written by `invite_many` only if what they assumed still holds under it."""

import pytest
from django.db import connection

from accounts import bulk_invites, lifecycle
from accounts.errors import NoLicensesLeft
from accounts.models import AuditEvent, OutboxEmail, Role, User
from contacts.models import Contact
from mail import tasks
from tests.factories import PortalAccountFactory, StaffFactory


@pytest.fixture
def world(db, monkeypatch):
    monkeypatch.setattr(tasks, "hand_many_to_celery", lambda row_ids, kinds: None)
    monkeypatch.setattr(tasks, "hand_to_celery", lambda row_id: None)
    account = PortalAccountFactory(partner_licenses=10)
    role = Role.objects.create(portal_account=account, name="Partner User", user_type="partner")
    return account, role, StaffFactory(name="Tess Tech")


def _rows(account, role, count, start=0):
    return [
        (
            Contact.objects.create(
                portal_account=account, name=f"P {i}", email=f"p{i}@example.com"
            ),
            role,
        )
        for i in range(start, start + count)
    ]


def test_a_plan_that_still_holds_is_written_as_planned(world):
    account, role, technician = world
    rows = _rows(account, role, 3)

    made = bulk_invites.plan(account, rows, by=technician, send_email=True)
    created, refused = bulk_invites.invite_many(
        account, rows, by=technician, send_email=True, plan=made
    )

    assert refused == []
    user_ids = [user_id for _row, user_id in created]
    if connection.vendor == "postgresql":  # ids drawn ahead, with the COPYs built
        assert user_ids == made.writes.user_ids
    users = User.objects.filter(pk__in=user_ids).order_by("pk")
    assert [user.contact_id for user in users] == [contact.pk for contact, _role in rows]
    assert AuditEvent.objects.filter(action="invite", subject_user__in=users).count() == 3
    assert OutboxEmail.objects.filter(user__in=users).count() == 3
    event = AuditEvent.objects.filter(action="invite").first()
    assert (event.actor, event.actor_label) == (technician, str(technician))


def test_a_role_made_inactive_after_the_plan_refuses_its_rows(world):
    account, role, technician = world
    rows = _rows(account, role, 2)
    made = bulk_invites.plan(account, rows, by=technician, send_email=True)

    Role.objects.filter(pk=role.pk).update(active=False)
    created, refused = bulk_invites.invite_many(
        account, rows, by=technician, send_email=True, plan=made
    )

    assert created == []
    assert [str(error) for _row, error in refused] == [
        "Role 'Partner User' is inactive. Pick an active role."
    ] * 2
    assert not User.objects.filter(portal_account=account).exists()
    assert not AuditEvent.objects.filter(action="invite").exists()


def test_a_role_renamed_after_the_plan_is_recorded_under_its_new_name(world):
    account, role, technician = world
    rows = _rows(account, role, 2)
    made = bulk_invites.plan(account, rows, by=technician, send_email=False)

    Role.objects.filter(pk=role.pk).update(name="Reseller")
    created, _refused = bulk_invites.invite_many(
        account, rows, by=technician, send_email=False, plan=made
    )

    assert len(created) == 2
    afters = AuditEvent.objects.filter(action="invite").values_list("after", flat=True)
    assert [after["role"] for after in afters] == ["Reseller", "Reseller"]


def test_seats_taken_after_the_plan_refuse_the_rows_past_them_and_nothing_of_theirs_is_written(
    world,
):
    account, role, technician = world
    rows = _rows(account, role, 5)
    made = bulk_invites.plan(account, rows, by=technician, send_email=True)

    for contact, _role in _rows(account, role, 7, start=100):
        lifecycle.invite(account, role=role, by=technician, contact=contact, send_email=False)
    created, refused = bulk_invites.invite_many(
        account, rows, by=technician, send_email=True, plan=made
    )

    assert [row for row, _id in created] == rows[:3]
    assert [row for row, _error in refused] == rows[3:]
    assert all(isinstance(error, NoLicensesLeft) for _row, error in refused)
    assert str(refused[0][1]) == "No Partner licenses left: 10 of 10 in use."
    new_ids = [user_id for _row, user_id in created]
    assert sorted(
        User.objects.filter(contact__in=[c for c, _r in rows]).values_list("pk", flat=True)
    ) == sorted(new_ids)
    assert AuditEvent.objects.filter(action="invite", detail="").count() == 3
    assert OutboxEmail.objects.count() == 3
    assert set(OutboxEmail.objects.values_list("user_id", flat=True)) == set(new_ids)


def test_an_email_taken_after_the_plan_refuses_that_row_and_creates_the_others(world):
    account, role, technician = world
    rows = _rows(account, role, 3)
    made = bulk_invites.plan(account, rows, by=technician, send_email=True)

    namesake = Contact.objects.create(portal_account=account, name="Other", email="p1@example.com")
    lifecycle.invite(account, role=role, by=technician, contact=namesake, send_email=False)
    created, refused = bulk_invites.invite_many(
        account, rows, by=technician, send_email=True, plan=made
    )

    assert [row for row, _id in created] == [rows[0], rows[2]]
    assert [(row, str(error)) for row, error in refused] == [
        (rows[1], "A portal user with the email p1@example.com already exists here.")
    ]
    assert User.objects.filter(portal_account=account).count() == 3


def test_a_plan_of_other_rows_is_not_used(world):
    account, role, technician = world
    planned, given = _rows(account, role, 2), _rows(account, role, 2, start=10)
    made = bulk_invites.plan(account, planned, by=technician, send_email=False)

    created, _refused = bulk_invites.invite_many(
        account, given, by=technician, send_email=False, plan=made
    )

    contacts = set(User.objects.filter(portal_account=account).values_list("contact", flat=True))
    assert contacts == {contact.pk for contact, _role in given}
    assert len(created) == 2


def test_an_email_of_the_batch_being_written_meanwhile_is_checked_under_the_lock(
    world, monkeypatch
):
    """Two contacts of one email in adjacent batches of an import: the second batch is planned
    while the first is written, so its plan cannot see the first's user. It is planned again
    under the lock, where that one row is refused and the rest still go in bulk (not the whole
    batch row by row after the unique index refuses it)."""
    account, role, technician = world
    rows = _rows(account, role, 3)
    made = bulk_invites.plan(
        account, rows, by=technician, send_email=True, in_flight={"p1@example.com"}
    )
    assert made.unsure
    namesake = Contact.objects.create(portal_account=account, name="Other", email="p1@example.com")
    lifecycle.invite(account, role=role, by=technician, contact=namesake, send_email=False)

    def row_by_row(*args, **kwargs):
        raise AssertionError("the batch fell back to invite row by row")

    monkeypatch.setattr(bulk_invites, "invite", row_by_row)
    created, refused = bulk_invites.invite_many(
        account, rows, by=technician, send_email=True, plan=made
    )

    assert [row for row, _id in created] == [rows[0], rows[2]]
    assert [(row, str(error)) for row, error in refused] == [
        (rows[1], "A portal user with the email p1@example.com already exists here.")
    ]
