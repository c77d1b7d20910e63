"""`accounts.bulk_invites.invite_many`: the batch form of `invite` that the CSV import applies rows
with (one transaction, bulk inserts, the licenses counted once, one hand-off to Celery)."""

import pytest

from accounts import bulk_invites, licenses, lifecycle
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
from mail import tasks
from tests.factories import PortalAccountFactory, PortalUserFactory, StaffFactory

# The real worker's fixtures, for the worker test below.
from tests.test_outbox_worker import broker, smtp_server, start_worker  # noqa: F401


@pytest.fixture
def world(db):
    account = PortalAccountFactory(partner_licenses=10)
    role = Role.objects.create(portal_account=account, name="Partner User", user_type="partner")
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
    monkeypatch.setattr(tasks, "hand_to_celery", ids.append)
    monkeypatch.setattr(tasks, "hand_many_to_celery", lambda row_ids, kinds: ids.extend(row_ids))
    return ids


def test_writes_a_user_an_audit_event_and_an_invitation_per_row(
    world, handed, django_capture_on_commit_callbacks
):
    account, role, technician = world
    contacts = _contacts(account, 3)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        created, refused = bulk_invites.invite_many(
            account,
            [(contact, role) for contact in contacts],
            by=technician,
            send_email=True,
            ip="10.0.0.1",
        )

    assert refused == []
    assert [row[0] for row, _user_id in created] == contacts
    users = [User.objects.get(pk=user_id) for _row, user_id in created]
    for user, contact in zip(users, contacts, strict=True):
        assert user.contact == contact
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
        bulk_invites.invite_many(
            account,
            [(contact, role) for contact in contacts],
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
        created, refused = bulk_invites.invite_many(
            account, [(contact, role)], by=technician, send_email=False
        )

    assert refused == []
    ((_row, user_id),) = created
    user = User.objects.get(pk=user_id)
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
        created, refused = bulk_invites.invite_many(account, rows, by=technician, send_email=True)

    assert [row for row, _user_id in created] == rows[:3]
    assert {User.objects.get(pk=user_id).contact for _row, user_id in created} == {
        contact for contact, _ in rows[:3]
    }
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
        created, refused = bulk_invites.invite_many(account, rows, by=technician, send_email=True)

    assert created == []
    assert [str(error) for _, error in refused] == ["No Partner licenses left: 0 of 0 in use."] * 4
    assert not User.objects.filter(portal_account=account).exists()
    assert not AuditEvent.objects.exists()
    assert not OutboxEmail.objects.exists()
    assert callbacks == []
    assert handed == []


def test_refuses_what_invite_refuses_and_creates_the_rest(world, handed):
    account, role, technician = world
    inactive = Role.objects.create(
        portal_account=account, name="Old", active=False, user_type="partner"
    )
    has_user, same_email, other, fine, twin = _contacts(account, 5)
    PortalUserFactory(portal_account=account, contact=has_user, role=role, email="x@example.com")
    PortalUserFactory(portal_account=account, contact=other, role=role, email="p1@example.com")
    twin.email = fine.email  # two contacts of the batch with one address
    twin.save()
    rows = [(has_user, role), (same_email, role), (other, inactive), (fine, role), (twin, role)]

    created, refused = bulk_invites.invite_many(account, rows, by=technician, send_email=True)

    assert [row[0] for row, _user_id in created] == [fine]
    assert User.objects.get(pk=created[0][1]).contact == fine
    messages = {row[0].name: str(error) for row, error in refused}
    assert messages == {
        has_user.name: f"User already exists: {has_user.name} already has a portal user.",
        same_email.name: "A portal user with the email p1@example.com already exists here.",
        other.name: "Role 'Old' is inactive. Pick an active role.",
        twin.name: "A portal user with the email p3@example.com already exists here.",
    }
    assert all(isinstance(error, LifecycleError) for _, error in refused)


def test_a_unique_violation_falls_back_to_invite_row_by_row(world, handed, monkeypatch):
    """A concurrent invite that wins a contact between the checks and the insert: the bulk
    insert breaks the one-user-per-contact constraint, the batch is rolled back to before it and
    done again with `invite`, which reports that row."""
    account, role, technician = world
    contacts = _contacts(account, 3)
    seats_used = licenses.seats_used

    def a_concurrent_invite_wins(*args):
        # Runs after the batch's checks, before its insert (and again in each invite).
        if not User.objects.filter(contact=contacts[1]).exists():
            PortalUserFactory(
                portal_account=account, contact=contacts[1], role=role, email="won@example.com"
            )
        return seats_used(*args)

    monkeypatch.setattr(licenses, "seats_used", a_concurrent_invite_wins)
    created, refused = bulk_invites.invite_many(
        account,
        [(contact, role) for contact in contacts],
        by=technician,
        send_email=True,
    )

    assert [row[0] for row, _user_id in created] == [contacts[0], contacts[2]]
    assert [User.objects.get(pk=user_id).contact for _row, user_id in created] == [
        contacts[0],
        contacts[2],
    ]
    assert [(row[0], str(error)) for row, error in refused] == [
        (contacts[1], "User already exists: P 1 already has a portal user.")
    ]
    assert User.objects.get(contact=contacts[1]).email == "won@example.com"
    assert AuditEvent.objects.filter(action="invite").count() == 2
    assert OutboxEmail.objects.count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("batch_first", [True, False], ids=["batch-holds", "invite-holds"])
def test_a_batch_and_an_invite_racing_for_the_last_seats_never_exceed_them(batch_first):
    """The batch counts the seats once, under the account row lock that `invite` takes too:
    whichever comes second waits for the first to commit and sees its seats taken."""
    from tests.test_license_race import first_holds_the_seat_while_second_asks

    account = PortalAccountFactory(customer_licenses=3)
    role = Role.objects.create(portal_account=account, name="Customer User", user_type="customer")
    technician = StaffFactory()
    batch_contacts = _contacts(account, 3)
    (single,) = _contacts(account, 1, start=10)

    def batch():
        return bulk_invites.invite_many(
            account,
            [(contact, role) for contact in batch_contacts],
            by=technician,
            send_email=False,
        )

    def invite():
        return lifecycle.invite(
            account,
            role=role,
            by=technician,
            contact=single,
            send_email=False,
        )

    first, second = (batch, invite) if batch_first else (invite, batch)
    first_racer, second_racer = first_holds_the_seat_while_second_asks(first, second)

    batch_racer, invite_racer = (
        (first_racer, second_racer) if batch_first else (second_racer, first_racer)
    )
    assert batch_racer.error is None, repr(batch_racer.error)
    created, refused = batch_racer.result
    if batch_first:
        assert len(created) == 3
        assert isinstance(invite_racer.error, NoLicensesLeft)
    else:
        assert invite_racer.error is None, repr(invite_racer.error)
        assert [row[0] for row, _ in created] == batch_contacts[:2]
        assert [str(error) for _, error in refused] == ["No Customer licenses left: 3 of 3 in use."]
    assert User.objects.filter(portal_account=account, user_type=UserType.CUSTOMER).count() == 3


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_batch_hands_its_invitations_to_a_real_worker_in_one_message(
    account, partner_role, technician, request
):
    """One Celery message for the batch; the worker gives each row its own paced task, and
    every invitation is sent once."""
    from tests.test_outbox_worker import row_in

    queue = request.getfixturevalue("broker")
    contacts = _contacts(account, 3)
    created, refused = bulk_invites.invite_many(
        account,
        [(contact, partner_role) for contact in contacts],
        by=technician,
        send_email=True,
    )  # commits: on_commit hands the batch to Celery
    assert (len(created), refused) == (3, [])
    assert queue.llen("bulk") == 1  # the bulk mail queue (settings.CELERY_TASK_ROUTES)

    smtp = request.getfixturevalue("smtp_server")()
    worker = request.getfixturevalue("start_worker")(smtp.port)
    for row in OutboxEmail.objects.all():
        worker.wait_for(f"invitation {row.pk} to be sent", lambda row=row: row_in("sent", row))

    assert sorted(message.rcpt_tos[0] for message in smtp.messages) == [
        "p0@example.com",
        "p1@example.com",
        "p2@example.com",
    ]


def test_the_batch_email_check_answers_as_valid_email():
    """invite_many checks thousands of addresses with lifecycle.email_checker (each domain
    checked once): it must accept and refuse exactly what valid_email does."""
    addresses = [
        "Person@Example.com",
        "  person@example.com  ",
        "first.last+tag@sub.example.co.uk",
        "person@example.com",  # the same domain again, from the checker's memory
        "person@localhost",
        "person@[127.0.0.1]",
        "person@[999.1.1.1]",
        '"quoted name"@example.com',
        "no-at-sign.example.com",
        "two@@example.com",
        "dot.@example.com",
        "person@-example.com",
        "person@example",
        "person@exa_mple.com",
        "person@xn--bcher-kva.example",
        "pérson@example.com",
        "person@bücher.example",
        "a" * 310 + "@example.com",
        "",
        None,
        "person@example.com\n",
        "per son@example.com",
    ]
    check = lifecycle.email_checker()
    assert [check(address) for address in addresses] == [
        lifecycle.valid_email(address) for address in addresses
    ]
    assert check("Person@Example.com") == "person@example.com"
    assert check("no-at-sign.example.com") == ""
