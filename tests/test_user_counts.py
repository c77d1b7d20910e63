"""The per-account user counters (accounts.models.UserCount) that tab counts, seat use and the
license checks read: kept by the database in the same transaction as every change, whichever
path writes the users, and checked by `manage.py recount_users`. Runs on SQLite (a trigger per
row) and, in CI, on PostgreSQL (a trigger per statement)."""

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone

from accounts import bulk_invites, licenses, lifecycle, scoping, user_counts
from accounts.models import User, UserCount, UserKind, UserState, UserType
from contacts.models import Contact, ContactCount
from tests.factories import PortalAccountFactory, PortalUserFactory, StaffFactory


def kept(account):
    """The counters, without zero rows (a counter that went back to 0 stays as a row)."""
    counts = user_counts.counts_of(UserCount.objects.filter(portal_account=account))
    return {key: users for key, users in counts.items() if users}


def counted(account):
    counts = {}
    for user in User.objects.filter(kind=UserKind.PORTAL, portal_account=account):
        key = (user.user_type, user.state)
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_every_lifecycle_step_moves_the_user_between_counters(account, partner_role, technician):
    contact = Contact.objects.create(portal_account=account, name="Ada Larsen", email="a@x.test")
    user = lifecycle.invite(
        account, user_type=UserType.PARTNER, role=partner_role, by=technician, contact=contact
    )
    assert kept(account) == {(UserType.PARTNER, UserState.UNCONFIRMED): 1}

    lifecycle.activate(user, "a-long-enough-password-1")
    assert kept(account) == {(UserType.PARTNER, UserState.ENABLED): 1}

    lifecycle.disable(user, by=technician)
    assert kept(account) == {(UserType.PARTNER, UserState.DISABLED): 1}
    assert licenses.seats_used(account, UserType.PARTNER) == 0

    lifecycle.enable(user, by=technician)
    assert licenses.seats_used(account, UserType.PARTNER) == 1

    lifecycle.delete(user, by=technician)
    assert kept(account) == {}


def test_a_batch_and_a_bulk_update_are_counted_like_single_changes(account, partner_role):
    technician = StaffFactory()
    contacts = [
        Contact.objects.create(portal_account=account, name=f"P {i}", email=f"p{i}@x.test")
        for i in range(4)
    ]
    created, refused = bulk_invites.invite_many(
        account,
        [(contact, partner_role) for contact in contacts],
        by=technician,
        send_email=False,
    )
    assert (len(created), refused) == (4, [])
    assert kept(account) == {(UserType.PARTNER, UserState.UNCONFIRMED): 4}

    # A queryset update (one statement for many rows) and a change of user type.
    User.objects.filter(pk__in=[user_id for _row, user_id in created[:3]]).update(
        state=UserState.DISABLED
    )
    User.objects.filter(pk=created[3][1]).update(user_type=UserType.CUSTOMER)
    assert kept(account) == {
        (UserType.PARTNER, UserState.DISABLED): 3,
        (UserType.CUSTOMER, UserState.UNCONFIRMED): 1,
    }
    assert kept(account) == counted(account)


def test_staff_and_other_accounts_are_not_counted(account, other_account):
    StaffFactory()
    PortalUserFactory(portal_account=other_account)
    PortalUserFactory(portal_account=account, user_type=UserType.CUSTOMER)
    assert kept(account) == {(UserType.CUSTOMER, UserState.ENABLED): 1}
    assert kept(other_account) == {(UserType.PARTNER, UserState.ENABLED): 1}


def test_a_rolled_back_change_leaves_the_counters_as_they_were(account):
    user = PortalUserFactory(portal_account=account)

    def disable_then_fail():
        with transaction.atomic():
            User.objects.filter(pk=user.pk).update(state=UserState.DISABLED)
            raise RuntimeError("the change fails after the user was written")

    with pytest.raises(RuntimeError):
        disable_then_fail()
    assert kept(account) == {(UserType.PARTNER, UserState.ENABLED): 1}


def test_tab_counts_and_seat_use_read_the_counters(account, mssp_admin, django_assert_num_queries):
    PortalUserFactory.create_batch(3, portal_account=account)
    PortalUserFactory(portal_account=account, state=UserState.UNCONFIRMED)
    PortalUserFactory(portal_account=account, state=UserState.DISABLED)
    from accounts.user_listing import tab_counts

    with django_assert_num_queries(1):
        tabs = tab_counts(mssp_admin, account)
    assert [(tab, count) for tab, _label, count in tabs] == [
        ("enabled", 3),
        ("disabled", 1),
        ("unconfirmed", 1),
    ]
    assert licenses.seats_used(account, UserType.PARTNER) == 4
    assert licenses.seats_used(account, UserType.CUSTOMER) == 0


def test_counters_are_scoped_like_every_tenant_query(account, other_account, other_admin):
    PortalUserFactory(portal_account=account)
    assert not scoping.user_counts(other_admin, account).exists()


def test_recount_reports_drift_and_fixes_it(account, capsys):
    PortalUserFactory.create_batch(2, portal_account=account)
    call_command("recount")
    assert "match" in capsys.readouterr().out

    # Something wrote the table behind the triggers' back.
    UserCount.objects.filter(portal_account=account).update(users=7)
    UserCount.objects.create(
        portal_account=account, user_type=UserType.EMPLOYEE, state=UserState.DISABLED, users=1
    )
    with pytest.raises(CommandError, match="2 counter"):
        call_command("recount", "--account", account.slug)
    out = capsys.readouterr().out
    assert "acme: users user_type=partner state=enabled: 7 kept, 2 counted" in out
    assert "acme: users user_type=employee state=disabled: 1 kept, 0 counted" in out

    call_command("recount", "--fix")
    assert "(fixed)" in capsys.readouterr().out
    assert kept(account) == counted(account) == {(UserType.PARTNER, UserState.ENABLED): 2}
    call_command("recount")


def test_recount_of_an_unknown_account_says_so(db):
    with pytest.raises(CommandError, match="No portal account"):
        call_command("recount", "--account", "nope")


def test_many_accounts_are_read_in_one_query(db, django_assert_num_queries):
    accounts = PortalAccountFactory.create_batch(3)
    for account in accounts:
        PortalUserFactory(portal_account=account)
    with django_assert_num_queries(1):
        counts = user_counts.by_account(accounts)
    assert all(user_counts.seats_of(counts[a.pk], UserType.PARTNER) == 1 for a in accounts)


def test_contact_counters_follow_deletion_and_restore(account, mssp_admin, capsys):
    live = Contact.objects.create(portal_account=account, name="Live One", email="l@x.test")
    gone = Contact.objects.create(portal_account=account, name="Gone One", email="g@x.test")
    Contact.objects.filter(pk=gone.pk).update(deleted_at=timezone.now())
    from contacts.contact_listing import show_counts

    assert show_counts(mssp_admin, account) == {"live": 1, "deleted": 1}
    Contact.objects.filter(pk=gone.pk).update(deleted_at=None)
    live.delete()
    assert show_counts(mssp_admin, account) == {"live": 1, "deleted": 0}

    ContactCount.objects.filter(portal_account=account, deleted=False).update(contacts=5)
    with pytest.raises(CommandError, match="1 counter"):
        call_command("recount")
    assert "acme: contacts deleted=False: 5 kept, 1 counted" in capsys.readouterr().out
    call_command("recount", "--fix")
    assert show_counts(mssp_admin, account) == {"live": 1, "deleted": 0}


def test_triggers_a_sqlite_table_rebuild_dropped_come_back_after_migrate(account):
    """SQLite drops a table's triggers when a migration rebuilds it (most ALTERs do)."""
    from django.core.management.sql import emit_post_migrate_signal
    from django.db import connection

    if connection.vendor == "sqlite":  # PostgreSQL keeps triggers through ALTER TABLE
        with connection.cursor() as cursor:
            for event in ("insert", "update", "delete"):
                cursor.execute(f"DROP TRIGGER accounts_user_count_{event}")
                cursor.execute(f"DROP TRIGGER contacts_contact_count_{event}")
    emit_post_migrate_signal(verbosity=0, interactive=False, db=connection.alias)

    PortalUserFactory(portal_account=account)
    assert kept(account) == {(UserType.PARTNER, UserState.ENABLED): 1}
    assert ContactCount.objects.get(portal_account=account, deleted=False).contacts == 1


def test_users_per_role_follow_role_changes_and_the_roles_pages_show_them(
    admin_client, account, partner_role, technician, capsys
):
    from django.urls import reverse

    from accounts.models import Role, RoleCount

    manager = Role.objects.create(
        portal_account=account, name="Partner Manager", user_type=UserType.PARTNER
    )
    users = [PortalUserFactory(portal_account=account, role=partner_role) for _ in range(3)]
    PortalUserFactory(portal_account=account, role=partner_role, state=UserState.DISABLED)

    def per_role():
        rows = RoleCount.objects.filter(portal_account=account, users__gt=0)
        return {row.role.name: row.users for row in rows}

    assert per_role() == {partner_role.name: 4}
    lifecycle.change_role(users[0], manager, by=technician)
    User.objects.filter(pk=users[1].pk).update(role=manager)  # one statement, many rows
    lifecycle.delete(users[2], by=technician)
    assert per_role() == {partner_role.name: 1, "Partner Manager": 2}

    page = admin_client.get(reverse("roles", args=[account.slug])).content.decode()
    assert '<td data-label="Users" class="num">2</td>' in page
    edit = admin_client.get(reverse("role-edit", args=[account.slug, manager.pk]))
    assert "2 users have this role" in edit.content.decode()

    RoleCount.objects.filter(role=manager).update(users=7)
    with pytest.raises(CommandError, match="1 counter"):
        call_command("recount", "--account", account.slug)
    assert f"users per role role_id={manager.pk}: 7 kept, 2 counted" in capsys.readouterr().out
    call_command("recount", "--fix")
    assert per_role() == {partner_role.name: 1, "Partner Manager": 2}
