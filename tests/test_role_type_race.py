"""A role's user type changing while someone gets the role: the user never ends up with a type
other than their role's. The type changes only under the account's row lock and only while
nobody has the role; invite and change role read the role's type again under that lock.

PostgreSQL only, as tests/test_license_race.py (whose helpers force the interleaving)."""

import pytest

from accounts import lifecycle
from accounts.forms.portal_accounts import RoleForm
from accounts.models import Role, User, UserKind, UserType
from tests.factories import ContactFactory, RoleFactory, StaffFactory
from tests.test_license_race import first_holds_the_seat_while_second_asks, outcome

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _retype(role, admin, user_type):
    form = RoleForm(
        {"name": role.name, "user_type": user_type},
        instance=Role.objects.get(pk=role.pk),
        person=admin,
        account=role.portal_account,
    )
    assert form.is_valid(), form.errors
    return form.save_audited(by=admin, ip=None), form


def test_an_invite_waiting_on_a_retype_takes_the_new_type(account):
    admin = StaffFactory(kind=UserKind.MSSP_ADMIN)
    role = RoleFactory(portal_account=account, name="Member")  # partner
    contact = ContactFactory(portal_account=account)
    stale = Role.objects.get(pk=role.pk)  # what the invite's form read: a partner role

    first, second = first_holds_the_seat_while_second_asks(
        lambda: _retype(role, admin, UserType.CUSTOMER),
        lambda: lifecycle.invite(account, role=stale, by=admin, contact=contact),
    )

    assert first.error is None, outcome(first)
    assert first.result[0]
    assert second.error is None, outcome(second)
    user = User.objects.get(contact=contact)
    assert (user.role_id, user.user_type) == (role.pk, UserType.CUSTOMER)


def test_a_retype_waiting_on_an_invite_is_refused(account):
    admin = StaffFactory(kind=UserKind.MSSP_ADMIN)
    role = RoleFactory(portal_account=account, name="Member")
    contact = ContactFactory(portal_account=account)

    first, second = first_holds_the_seat_while_second_asks(
        lambda: lifecycle.invite(account, role=role, by=admin, contact=contact),
        lambda: _retype(role, admin, UserType.CUSTOMER),
    )

    assert first.error is None, outcome(first)
    saved, form = second.result
    assert not saved
    assert "Users have the role 'Member'" in form.errors["user_type"][0]
    assert Role.objects.get(pk=role.pk).user_type == UserType.PARTNER
    assert User.objects.get(contact=contact).user_type == UserType.PARTNER
