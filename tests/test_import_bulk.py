"""`accounts.lifecycle.invite_many`: the batch form of `invite` that the CSV import applies rows
with (one transaction, bulk inserts, the licenses counted once, one hand-off to Celery)."""

import pytest
from django.db import IntegrityError

from accounts import lifecycle, outbox
from accounts.errors import LifecycleError, NoLicensesLeft
from accounts.models import (
    AuditEvent,
    EmailKind,
    OutboxEmail,
    Role,
    User,
    UserState,
    UserType,
)
from contacts.models import Contact
from tests.factories import PortalAccountFactory, PortalUserFactory, StaffFactory


@pytest.fixture
def world(db):
    account = PortalAccountFactory(partner_licenses=10)
    role = Role.objects.create(portal_account=account, name="Partner User")
    technician = StaffFactory(name="Tess Tech")
    return account, role, technician


def _contacts(account, count, start=0):
    return [
        Contact.objects.create(portal_account=account, name=f"P {i}", email=f"P{i}@Example.com")
        for i in range(start, start + count)
    ]


@pytest.fixture
def handed(monkeypatch):
    """Outbox ids handed to Celery (recorded, not sent)."""
    ids = []
    monkeypatch.setattr(outbox, "_hand_to_celery", ids.append)
    return ids


def test_writes_a_user_an_audit_event_and_an_invitation_per_row(
    world, handed, django_capture_on_commit_callbacks
):
    account, role, technician = world
    contacts = _contacts(account, 3)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        created, refused = lifecycle.invite_many(
            account,
            [(contact, role) for contact in contacts],
            user_type=UserType.PARTNER,
            by=technician,
            send_email=True,
            ip="10.0.0.1",
        )

    assert refused == []
    assert [user.contact_id for user in created] == [contact.pk for contact in contacts]
    for user, contact in zip(created, contacts, strict=True):
        user.refresh_from_db()
        assert user.email == contact.email.lower()
        assert user.name == contact.name
        assert (user.state, user.role, user.user_type) == (
            UserState.UNCONFIRMED,
            role,
            UserType.PARTNER,
        )
        assert user.invited_at is not None
        assert user.last_invited_at is not None
        assert not user.has_usable_password()
        event = AuditEvent.objects.get(subject_user=user)
        assert (event.action, event.actor, event.portal_account) == ("invite", technician, account)
        assert event.actor_label == str(technician)
        assert event.subject_label == str(user)
        assert event.after == {"state": "unconfirmed", "role": role.name, "is_account_admin": False}
        assert (event.ip_address, event.detail) == ("10.0.0.1", "")
        email = OutboxEmail.objects.get(user=user)
        assert (email.kind, email.to_email, email.portal_account) == (
            EmailKind.INVITATION,
            user.email,
            account,
        )
        assert email.status == OutboxEmail.Status.PENDING
        assert email.queued_at is not None
        assert email.context == {"invited_by": "Tess Tech"}
    assert len(callbacks) == 1
    assert sorted(handed) == sorted(OutboxEmail.objects.values_list("pk", flat=True))


def test_the_outbox_is_handed_to_celery_only_after_commit(
    world, handed, django_capture_on_commit_callbacks
):
    account, role, technician = world
    contacts = _contacts(account, 2)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        lifecycle.invite_many(
            account,
            [(contact, role) for contact in contacts],
            user_type=UserType.PARTNER,
            by=technician,
            send_email=True,
        )
        assert handed == []
    assert handed == []
    assert len(callbacks) == 1

    callbacks[0]()

    assert sorted(handed) == sorted(OutboxEmail.objects.values_list("pk", flat=True))
    assert len(handed) == 2


def test_without_email_no_outbox_and_the_audit_says_so(
    world, handed, django_capture_on_commit_callbacks
):
    account, role, technician = world
    contact = Contact.objects.create(portal_account=account, name="No Mail", email="not-an-email")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        created, refused = lifecycle.invite_many(
            account, [(contact, role)], user_type=UserType.PARTNER, by=technician, send_email=False
        )

    assert refused == []
    (user,) = created
    assert (user.email, user.last_invited_at) == ("", None)
    assert AuditEvent.objects.get(subject_user=user).detail == "no invitation email"
    assert not OutboxEmail.objects.exists()
    assert callbacks == []
    assert handed == []


def test_creates_only_as_many_as_the_licenses_allow(
    world, handed, django_capture_on_commit_callbacks
):
    account, role, technician = world
    for contact in _contacts(account, 7, start=100):
        PortalUserFactory(portal_account=account, contact=contact, role=role)
    rows = [(contact, role) for contact in _contacts(account, 5)]

    with django_capture_on_commit_callbacks(execute=True):
        created, refused = lifecycle.invite_many(
            account, rows, user_type=UserType.PARTNER, by=technician, send_email=True
        )

    assert [user.contact for user in created] == [contact for contact, _ in rows[:3]]
    assert [row for row, _ in refused] == rows[3:]
    for _row, error in refused:
        assert isinstance(error, NoLicensesLeft)
        assert str(error) == "No Partner licenses left: 10 of 10 in use."
    assert User.objects.filter(portal_account=account).count() == 10
    assert AuditEvent.objects.filter(action="invite").count() == 3
    assert OutboxEmail.objects.count() == 3
    assert len(handed) == 3


def test_a_batch_with_no_seat_left_writes_nothing(
    world, handed, django_capture_on_commit_callbacks
):
    account, role, technician = world
    account.partner_licenses = 0
    account.save()
    rows = [(contact, role) for contact in _contacts(account, 4)]

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        created, refused = lifecycle.invite_many(
            account, rows, user_type=UserType.PARTNER, by=technician, send_email=True
        )

    assert created == []
    assert [str(error) for _, error in refused] == ["No Partner licenses left: 0 of 0 in use."] * 4
    assert not User.objects.filter(portal_account=account).exists()
    assert not AuditEvent.objects.exists()
    assert not OutboxEmail.objects.exists()
    assert callbacks == []
    assert handed == []


def test_refuses_what_invite_refuses_and_creates_the_rest(world, handed):
    account, role, technician = world
    inactive = Role.objects.create(portal_account=account, name="Old", active=False)
    has_user, same_email, other, fine, twin = _contacts(account, 5)
    PortalUserFactory(portal_account=account, contact=has_user, role=role, email="x@example.com")
    PortalUserFactory(portal_account=account, contact=other, role=role, email="p1@example.com")
    twin.email = fine.email  # two contacts of the batch with one address
    twin.save()
    rows = [(has_user, role), (same_email, role), (other, inactive), (fine, role), (twin, role)]

    created, refused = lifecycle.invite_many(
        account, rows, user_type=UserType.PARTNER, by=technician, send_email=True
    )

    assert [user.contact for user in created] == [fine]
    messages = {row[0].name: str(error) for row, error in refused}
    assert messages == {
        has_user.name: f"User already exists: {has_user.name} already has a portal user.",
        same_email.name: "A portal user with the email p1@example.com already exists here.",
        other.name: "Role 'Old' is inactive. Pick an active role.",
        twin.name: "A portal user with the email p3@example.com already exists here.",
    }
    assert all(isinstance(error, LifecycleError) for _, error in refused)


def test_a_unique_violation_falls_back_to_invite_row_by_row(world, handed, monkeypatch):
    """A concurrent import that wins a contact between the checks and the insert: the batch is
    rolled back to before it and done again with `invite`, which reports each row."""
    account, role, technician = world
    contacts = _contacts(account, 3)

    def collide(*args, **kwargs):
        raise IntegrityError("duplicate key value violates unique constraint")

    monkeypatch.setattr(User.objects, "bulk_create", collide)
    created, refused = lifecycle.invite_many(
        account,
        [(contact, role) for contact in contacts],
        user_type=UserType.PARTNER,
        by=technician,
        send_email=True,
    )

    assert refused == []
    assert [user.contact for user in created] == contacts
    assert User.objects.filter(portal_account=account).count() == 3
    assert AuditEvent.objects.filter(action="invite").count() == 3
    assert OutboxEmail.objects.count() == 3
