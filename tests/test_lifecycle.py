import pytest
from django.db import IntegrityError, transaction

from accounts import lifecycle, tokens
from accounts.errors import LifecycleError, NoLicensesLeft
from accounts.models import (
    AuditEvent,
    EmailKind,
    LoginToken,
    OutboxEmail,
    PortalAccount,
    TokenPurpose,
    User,
    UserState,
    UserType,
)
from contacts.models import Contact
from tests.factories import ContactFactory, PortalUserFactory, RoleFactory


@pytest.fixture
def contact(account):
    return ContactFactory(portal_account=account, name="Grace Hopper", email="Grace@Example.com")


def invite(account, role, by, **kwargs):
    return lifecycle.invite(account, role=role, by=by, **kwargs)


def outbox_kinds(user):
    return list(OutboxEmail.objects.filter(user=user).values_list("kind", flat=True))


def last_audit():
    return AuditEvent.objects.order_by("-id").first()


# --- invite ---


def test_invite_creates_an_unconfirmed_user_with_audit_and_invitation(
    account, partner_role, contact, technician
):
    user = invite(account, partner_role, technician, contact=contact, ip="10.0.0.7")

    assert user.state == UserState.UNCONFIRMED
    assert user.email == "grace@example.com"
    assert user.contact == contact
    assert not user.has_usable_password()
    event = last_audit()
    assert (event.action, event.actor, event.subject_user, event.ip_address) == (
        "invite",
        technician,
        user,
        "10.0.0.7",
    )
    assert event.after == {
        "state": "unconfirmed",
        "role": "Partner User",
        "is_account_admin": False,
    }
    assert outbox_kinds(user) == [EmailKind.INVITATION]


def test_invite_by_name_and_email_creates_the_console_contact(account, customer_role, technician):
    user = invite(
        account,
        customer_role,
        technician,
        user_type=UserType.CUSTOMER,
        name="Alan Turing",
        email="alan@example.com",
    )
    contact = Contact.objects.get(portal_account=account, email="alan@example.com")
    assert contact.source == Contact.Source.CONSOLE
    assert len(contact.contact_id) == 19
    assert user.contact == contact


def test_employee_users_have_no_contact(account, employee_role, technician):
    user = invite(
        account,
        employee_role,
        technician,
        name="Eve Employee",
        email="eve@acme.example",
    )
    assert user.contact is None
    assert not Contact.objects.exists()


def test_invite_without_email_is_allowed_only_without_an_invitation(
    account, partner_role, technician
):
    no_email = ContactFactory(portal_account=account, name="Ken Thompson", email="")
    with pytest.raises(LifecycleError, match="no valid email"):
        invite(account, partner_role, technician, contact=no_email)
    user = invite(account, partner_role, technician, contact=no_email, send_email=False)
    assert user.email == ""
    assert outbox_kinds(user) == []


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda c, r: r.__class__.objects.filter(pk=r.pk).update(active=False), "inactive"),
        (
            lambda c, r: Contact.objects.filter(pk=c.pk).update(deleted_at="2026-01-01T00:00Z"),
            "deleted in the CRM",
        ),
    ],
)
def test_invite_refusals_change_nothing(account, partner_role, contact, technician, setup, message):
    setup(contact, partner_role)
    contact.refresh_from_db()
    partner_role.refresh_from_db()
    with pytest.raises(LifecycleError, match=message):
        invite(account, partner_role, technician, contact=contact)
    assert not User.objects.filter(portal_account=account).exists()
    assert not AuditEvent.objects.exists()
    assert not OutboxEmail.objects.exists()


def test_a_contact_gets_one_user_only(account, partner_role, contact, technician):
    invite(account, partner_role, technician, contact=contact)
    with pytest.raises(LifecycleError, match="User already exists"):
        invite(account, partner_role, technician, contact=contact)


def test_email_is_unique_within_an_account_only(account, other_account, employee_role, technician):
    invite(account, employee_role, technician, name="A", email="a@x.io")
    with pytest.raises(LifecycleError, match="already exists"):
        invite(account, employee_role, technician, name="B", email="A@x.io")
    other_role = RoleFactory(portal_account=other_account, user_type=UserType.EMPLOYEE)
    invite(other_account, other_role, technician, name="A", email="a@x.io")


def test_role_of_another_account_is_refused(account, other_account, contact, technician):
    foreign_role = RoleFactory(portal_account=other_account, name="Partner User")
    with pytest.raises(LifecycleError, match="not a role of"):
        invite(account, foreign_role, technician, contact=contact)


# --- licenses ---


def test_the_seat_after_the_last_one_is_refused_with_type_and_count(
    account, customer_role, technician
):
    account.customer_licenses = 2
    account.save()
    for n in range(2):
        invite(
            account,
            customer_role,
            technician,
            user_type=UserType.CUSTOMER,
            name=f"C{n}",
            email=f"c{n}@example.com",
        )
    with pytest.raises(NoLicensesLeft, match=r"^No Customer licenses left: 2 of 2 in use\.$"):
        invite(
            account,
            customer_role,
            technician,
            user_type=UserType.CUSTOMER,
            name="C3",
            email="c3@example.com",
        )
    assert User.objects.filter(user_type=UserType.CUSTOMER).count() == 2


def test_disabled_users_give_their_seat_back(account, partner_role, technician):
    account.partner_licenses = 1
    account.save()
    first = PortalUserFactory(portal_account=account, role=partner_role)
    with pytest.raises(NoLicensesLeft):
        invite(account, partner_role, technician, name="Second", email="second@example.com")
    lifecycle.disable(first, by=technician)
    invite(account, partner_role, technician, name="Second", email="second@example.com")
    with pytest.raises(NoLicensesLeft, match="1 of 1"):
        lifecycle.enable(first, by=technician)


# --- activate, disable, enable ---


def test_activate_sets_the_password_and_enables(account, partner_role, contact, technician):
    user = invite(account, partner_role, technician, contact=contact)
    user = lifecycle.activate(user, "a-long-new-password")
    assert user.state == UserState.ENABLED
    assert user.check_password("a-long-new-password")
    assert user.is_active
    assert last_audit().actor == user


def test_activate_twice_is_an_illegal_transition(account, partner_role):
    user = PortalUserFactory(portal_account=account, role=partner_role)
    with pytest.raises(LifecycleError, match="Cannot activate .*: the user is Enabled"):
        lifecycle.activate(user, "whatever-password")


def test_disable_blocks_sign_in_and_kills_every_link(account, partner_role, technician):
    user = PortalUserFactory(portal_account=account, role=partner_role)
    tokens.issue(user, TokenPurpose.MAGIC_LINK)
    tokens.issue(user, TokenPurpose.PASSWORD_RESET)

    user = lifecycle.disable(user, by=technician)

    assert user.state == UserState.DISABLED
    assert user.disabled_by == technician
    assert not user.is_active
    assert not any(t.is_live for t in LoginToken.objects.filter(user=user))
    assert last_audit().before["state"] == "enabled"
    assert last_audit().after["state"] == "disabled"
    with pytest.raises(LifecycleError, match="is Disabled"):
        lifecycle.disable(user, by=technician)


def test_enable_restores_access_with_a_login_email(account, partner_role, technician):
    user = lifecycle.disable(
        PortalUserFactory(portal_account=account, role=partner_role), by=technician
    )
    user = lifecycle.enable(user, by=technician)
    assert user.state == UserState.ENABLED
    assert user.disabled_at is None
    assert outbox_kinds(user) == [EmailKind.ACCESS_RESTORED]


def test_enable_sends_a_never_activated_user_back_to_unconfirmed(
    account, partner_role, contact, technician
):
    user = invite(account, partner_role, technician, contact=contact)
    user = lifecycle.disable(user, by=technician)
    assert OutboxEmail.objects.get(user=user).status == OutboxEmail.Status.CANCELLED
    user = lifecycle.enable(user, by=technician)
    assert user.state == UserState.UNCONFIRMED
    assert (
        OutboxEmail.objects.filter(user=user, status="pending").get().kind == EmailKind.INVITATION
    )


def test_enable_is_refused_while_the_contact_is_deleted(account, partner_role, technician):
    user = PortalUserFactory(portal_account=account, role=partner_role, state=UserState.DISABLED)
    Contact.objects.filter(pk=user.contact_id).update(deleted_at="2026-01-01T00:00Z")
    with pytest.raises(LifecycleError, match="restore the contact"):
        lifecycle.enable(user, by=technician)


def test_a_user_whose_contact_is_deleted_cannot_sign_in(account, partner_role):
    user = PortalUserFactory(portal_account=account, role=partner_role)
    Contact.objects.filter(pk=user.contact_id).update(deleted_at="2026-01-01T00:00Z")
    assert not User.objects.get(pk=user.pk).is_active


# --- delete, reinvite, reset password, change role ---


def test_delete_removes_the_login_and_keeps_the_audit_trail(
    account, partner_role, contact, technician
):
    user = invite(account, partner_role, technician, contact=contact)
    user_id = user.pk
    lifecycle.delete(user, by=technician)

    assert not User.objects.filter(pk=user_id).exists()
    assert not LoginToken.objects.filter(user_id=user_id).exists()
    assert Contact.objects.filter(pk=contact.pk).exists()
    assert OutboxEmail.objects.get().status == OutboxEmail.Status.CANCELLED
    events = AuditEvent.objects.filter(subject_label__contains="grace@example.com")
    assert list(events.values_list("action", flat=True).order_by("id")) == ["invite", "delete"]
    # the contact can be given a new login afterwards
    invite(account, partner_role, technician, contact=contact)


def test_the_account_admin_seat_cannot_be_deleted(account_admin, technician):
    with pytest.raises(LifecycleError, match="Make another user the account admin first"):
        lifecycle.delete(account_admin, by=technician)


def test_reinvite_kills_every_older_invitation(account, partner_role, contact, technician):
    user = invite(account, partner_role, technician, contact=contact)
    old_secret = tokens.issue(user, TokenPurpose.ACTIVATION)

    lifecycle.reinvite(user, by=technician)

    with pytest.raises(Exception, match="replaced by a newer one"):
        tokens.peek(old_secret, TokenPurpose.ACTIVATION, account)
    rows = OutboxEmail.objects.filter(user=user).order_by("id")
    assert [(r.kind, r.status) for r in rows] == [
        (EmailKind.INVITATION, "cancelled"),
        (EmailKind.REINVITATION, "pending"),
    ]


def test_reinvite_is_only_for_unconfirmed_users(account, partner_role, technician):
    user = PortalUserFactory(portal_account=account, role=partner_role)
    with pytest.raises(LifecycleError, match="Cannot reinvite"):
        lifecycle.reinvite(user, by=technician)


def test_reset_password_emails_an_enabled_user(account, partner_role, technician):
    user = PortalUserFactory(portal_account=account, role=partner_role)
    lifecycle.reset_password(user, by=technician)
    assert outbox_kinds(user) == [EmailKind.PASSWORD_RESET]
    assert User.objects.get(pk=user.pk).state == UserState.ENABLED


def test_change_role_keeps_the_state_and_audits_before_and_after(
    account, partner_role, customer_role, technician
):
    user = PortalUserFactory(portal_account=account, role=partner_role, state=UserState.DISABLED)
    user = lifecycle.change_role(user, customer_role, by=technician)
    assert (user.role, user.state) == (customer_role, UserState.DISABLED)
    event = last_audit()
    assert (event.before["role"], event.after["role"]) == ("Partner User", "Customer User")
    with pytest.raises(LifecycleError, match="already has the role"):
        lifecycle.change_role(user, customer_role, by=technician)


def test_change_role_refuses_an_inactive_role(account, partner_role, inactive_role, technician):
    user = PortalUserFactory(portal_account=account, role=partner_role)
    with pytest.raises(LifecycleError, match="Role 'Reseller' is inactive"):
        lifecycle.change_role(user, inactive_role, by=technician)


def test_the_admin_seat_moves_in_one_step(account, account_admin, partner_role, mssp_admin):
    successor = PortalUserFactory(portal_account=account, role=partner_role)
    lifecycle.make_account_admin(successor, by=mssp_admin)
    admins = User.objects.filter(portal_account=account, is_account_admin=True)
    assert list(admins) == [successor]
    assert {e.action for e in AuditEvent.objects.all()} == {
        "make_account_admin",
        "remove_account_admin",
    }


def test_staff_are_not_portal_users(technician, mssp_admin):
    with pytest.raises(LifecycleError, match="MSSP staff"):
        lifecycle.disable(technician, by=mssp_admin)


# --- database rules hold even when code forgets them ---


def test_database_allows_one_account_admin_per_account(account, account_admin, partner_role):
    with pytest.raises(IntegrityError), transaction.atomic():
        PortalUserFactory(portal_account=account, role=partner_role, is_account_admin=True)


def test_database_allows_one_user_per_contact(account, partner_role):
    user = PortalUserFactory(portal_account=account, role=partner_role)
    with pytest.raises(IntegrityError), transaction.atomic():
        PortalUserFactory(portal_account=account, role=partner_role, contact=user.contact)


def test_role_names_are_unique_per_account_and_case_sensitive(account, partner_role):
    RoleFactory(portal_account=account, name="partner user")
    with pytest.raises(IntegrityError), transaction.atomic():
        RoleFactory(portal_account=account, name="Partner User")


def test_database_refuses_a_partner_without_a_contact(account, partner_role):
    with pytest.raises(IntegrityError), transaction.atomic():
        PortalUserFactory(portal_account=account, role=partner_role, contact=None)


def test_the_license_limit_is_read_fresh_not_from_the_callers_copy(
    account, customer_role, technician
):
    loaded_before_the_change = PortalAccount.objects.get(pk=account.pk)
    PortalAccount.objects.filter(pk=account.pk).update(customer_licenses=0)
    with pytest.raises(NoLicensesLeft, match="0 of 0 in use"):
        invite(
            loaded_before_the_change,
            customer_role,
            technician,
            user_type=UserType.CUSTOMER,
            name="Late",
            email="late@example.com",
        )


def test_login_emails_go_to_enabled_users_only(account, partner_role, technician):
    user = PortalUserFactory(portal_account=account, role=partner_role)
    lifecycle.send_login_email(user, by=technician, target="courses")
    row = OutboxEmail.objects.get(user=user)
    assert (row.kind, row.context) == (EmailKind.LOGIN_LINK, {"target": "courses"})
    lifecycle.disable(user, by=technician)
    with pytest.raises(LifecycleError, match="Cannot send a login email"):
        lifecycle.send_login_email(user, by=technician)


@pytest.mark.parametrize(
    ("state", "action"),
    [
        (UserState.UNCONFIRMED, lambda user, by: lifecycle.reinvite(user, by=by)),
        (UserState.ENABLED, lambda user, by: lifecycle.reset_password(user, by=by)),
        (UserState.UNCONFIRMED, lambda user, by: lifecycle.activate(user, "a-long-password-1")),
    ],
    ids=["reinvite", "reset password", "activate"],
)
def test_nothing_reaches_a_user_whose_contact_is_deleted(
    account, partner_role, technician, state, action
):
    user = PortalUserFactory(portal_account=account, role=partner_role, state=state)
    Contact.objects.filter(pk=user.contact_id).update(deleted_at="2026-01-01T00:00Z")

    with pytest.raises(LifecycleError, match="contact was deleted"):
        action(user, technician)

    assert User.objects.get(pk=user.pk).state == state
    assert not OutboxEmail.objects.filter(user=user).exists()
