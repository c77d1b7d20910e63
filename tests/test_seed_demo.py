from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core import mail
from django.core.management import CommandError, call_command

from accounts import licenses
from accounts.models import (
    AuditEvent,
    EmailKind,
    LoginToken,
    OutboxEmail,
    PortalAccount,
    Role,
    User,
    UserKind,
    UserState,
    UserType,
)
from contacts.models import Contact

DEMO_PASSWORD = "demo-password-1"
SLUGS = ["acme", "globex", "initech"]


def seed():
    out = StringIO()
    call_command("seed_demo", "--without-debug", stdout=out)
    return out.getvalue()


def counts():
    models = [PortalAccount, Role, Contact, User, AuditEvent, OutboxEmail, LoginToken]
    return {model.__name__: model.objects.count() for model in models}


@pytest.fixture(scope="class")
def demo_world(django_db_setup, django_db_blocker):
    """The demo data, seeded once for the tests of TestTheDemoData, which only read it (seeding
    takes a second): in a transaction that each test's own nests in, rolled back after the
    class. Seeded as in a test (tests/conftest.py): fast password hashes, emails kept in
    mail.outbox, tasks run in-process."""
    from django.core.cache import cache
    from django.db import transaction
    from django.test import TestCase, override_settings

    from accounts import link_lifetimes
    from portal_admin.celery import app as celery_app

    fast = override_settings(
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
    )
    eager = celery_app.conf.task_always_eager
    with django_db_blocker.unblock(), fast:
        celery_app.conf.task_always_eager = True
        link_lifetimes.forget()
        cache.clear()
        del mail.outbox[:]
        seeded = transaction.atomic()
        seeded.__enter__()
        try:
            # The command's own transaction is nested in this one, so run its on-commit hooks
            # (the mailed invitations) by hand.
            with TestCase.captureOnCommitCallbacks(execute=True):
                printed = seed()
            mails = list(mail.outbox)
        except BaseException:
            transaction.set_rollback(True)
            seeded.__exit__(None, None, None)
            raise
        finally:
            celery_app.conf.task_always_eager = eager
    yield printed, mails
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        seeded.__exit__(None, None, None)


@pytest.fixture
def output(demo_world, db):
    """What seed_demo printed; the database and mail.outbox as it left them."""
    printed, mails = demo_world
    mail.outbox[:] = mails  # pytest-django empties it before each test
    return printed


class TestTheDemoData:
    """One seeding (demo_world) for all the tests that read what it made."""

    def test_second_run_changes_nothing(self, output):
        before = counts()
        again = seed()
        assert counts() == before
        assert "Already there" in again
        assert "admin@acme.example" in again

    def test_staff_and_portal_accounts(self, output):
        staff = User.objects.filter(portal_account__isnull=True)
        assert sorted(staff.values_list("email", "kind")) == [
            ("admin@mssp.example", UserKind.MSSP_ADMIN),
            ("tech@mssp.example", UserKind.TECHNICIAN),
        ]
        assert sorted(PortalAccount.objects.values_list("slug", flat=True)) == SLUGS
        assert Contact.objects.count() >= 200
        for account in PortalAccount.objects.all():
            assert account.roles.filter(active=False).exists()
            assert account.roles.filter(active=True).exists()

    def test_every_account_has_users_in_every_state(self, output):
        for account in PortalAccount.objects.all():
            states = set(account.users.values_list("state", flat=True))
            assert states == set(UserState.values), account
            types = set(account.users.values_list("user_type", flat=True))
            assert types == set(UserType.values), account

    def test_one_enabled_account_admin_per_account(self, output):
        for account in PortalAccount.objects.all():
            admins = account.users.filter(is_account_admin=True)
            assert admins.count() == 1
            admin = admins.get()
            assert admin.email == f"admin@{account.slug}.example"
            assert admin.can_use_console()

    def test_users_went_through_the_lifecycle(self, output):
        portal_users = User.objects.portal_users()
        assert AuditEvent.objects.filter(action="invite").count() == portal_users.count()
        enabled = portal_users.filter(state=UserState.ENABLED).count()
        assert AuditEvent.objects.filter(action="activate").count() >= enabled
        assert AuditEvent.objects.filter(action="disable").count() == (
            portal_users.filter(state=UserState.DISABLED).count()
        )

    def test_every_role_has_a_type_and_its_users_have_it(self, output):
        for account in PortalAccount.objects.all():
            types = set(account.roles.filter(active=True).values_list("user_type", flat=True))
            assert types == {"partner", "customer", "employee"}, account.slug
        portal_users = User.objects.portal_users().select_related("role")
        assert all(user.user_type == user.role.user_type for user in portal_users)

    def test_orphaned_user_and_near_limit_license(self, output):
        orphans = User.objects.filter(state=UserState.ENABLED, contact__deleted_at__isnull=False)
        assert orphans.exists()
        assert not orphans.first().is_active

        near_limit = [
            (account.slug, user_type)
            for account in PortalAccount.objects.all()
            for user_type in UserType
            if licenses.seats_used(account, user_type) >= 0.8 * account.licenses_for(user_type)
        ]
        assert near_limit

    def test_a_few_invitations_are_mailed(self, output):
        invitations = OutboxEmail.objects.filter(kind=EmailKind.INVITATION)
        assert 1 <= invitations.count() <= 10
        assert set(invitations.values_list("status", flat=True)) == {OutboxEmail.Status.SENT}
        assert sorted(m.to[0] for m in mail.outbox) == sorted(
            invitations.values_list("to_email", flat=True)
        )

    def test_printed_logins_work(self, output):
        assert DEMO_PASSWORD in output
        for email in ["admin@mssp.example", "tech@mssp.example"] + [
            f"admin@{slug}.example" for slug in SLUGS
        ]:
            assert email in output
            assert authenticate(None, username=email, password=DEMO_PASSWORD) is not None, email
        acme = PortalAccount.objects.get(slug="acme")
        member = (
            acme.users.filter(state=UserState.ENABLED, is_account_admin=False)
            .exclude(user_type=UserType.EMPLOYEE)
            .filter(contact__deleted_at__isnull=True)
            .order_by("email")
            .first()
        )
        assert member.email in output
        user = authenticate(None, portal_account=acme, email=member.email, password=DEMO_PASSWORD)
        assert user == member


def test_an_existing_demo_slug_is_left_alone(db):
    PortalAccount.objects.create(name="Our real Acme", slug="acme", partner_licenses=1)
    output = seed()
    acme = PortalAccount.objects.get(slug="acme")
    assert acme.name == "Our real Acme"
    assert not acme.users.exists()
    assert PortalAccount.objects.filter(slug__in=["globex", "initech"]).count() == 2
    kept = next(line for line in output.splitlines() if line.startswith("Already there"))
    assert "Our real Acme" in kept


@pytest.mark.django_db
def test_it_refuses_without_debug_so_no_public_password_reaches_production(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="runs only with DEBUG on"):
        call_command("seed_demo", stdout=StringIO())
    assert not User.objects.exists()
