"""contacts.mirror: deleting and restoring a contact, moving an orphaned user to another contact,
merging two contacts, and what each does to the portal user standing on them."""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import lifecycle, tokens
from accounts.errors import LifecycleError
from accounts.models import AuditEvent, EmailKind, OutboxEmail, TokenPurpose, User, UserState
from contacts import mirror
from contacts.models import Contact
from tests.factories import PASSWORD, ContactFactory, PortalUserFactory

BLOCKED = "Your account may be temporarily disabled, please contact the administrator."


def fresh(obj):
    return type(obj).objects.get(pk=obj.pk)


def signs_in(client, user):
    portal = f"/p/{user.portal_account.slug}/"
    client.post(portal + "login/", {"email": user.email, "password": PASSWORD})
    return client.get(portal).status_code == 200


@pytest.fixture
def jane(account, partner_role):
    return PortalUserFactory(
        portal_account=account,
        role=partner_role,
        name="Jane Doe",
        email="jane@example.com",
        contact__crm_account_name="Wayne Enterprises",
    )


@pytest.fixture
def wayne(account):
    """A live contact of Jane's CRM account without a portal user."""
    return ContactFactory(
        portal_account=account,
        name="Janet Doe",
        email="Janet@Wayne.example",
        crm_account_name="Wayne Enterprises",
    )


# --- delete and restore ---


def test_deleting_a_contact_locks_its_user_out(client, jane, technician):
    mirror.delete_contact(jane.contact, by=technician, ip="10.0.0.1")
    assert fresh(jane.contact).deleted_at is not None
    assert not fresh(jane).is_active
    page = client.post("/p/acme/login/", {"email": jane.email, "password": PASSWORD})
    assert BLOCKED in page.content.decode()
    assert client.get("/p/acme/").status_code == 302
    event = AuditEvent.objects.get(action="delete_contact")
    assert event.subject_user == jane
    assert event.actor == technician
    assert str(event.ip_address) == "10.0.0.1"
    assert jane.contact.contact_id in event.detail
    assert event.before["deleted"] is False
    assert event.after["deleted"] is True


def test_deleting_a_contact_without_a_user_is_audited_without_subject(account, technician):
    contact = ContactFactory(portal_account=account)
    mirror.delete_contact(contact, by=technician)
    event = AuditEvent.objects.get(action="delete_contact")
    assert event.subject_user is None
    assert event.portal_account == account


def test_deleting_twice_is_refused_and_changes_nothing(jane, technician):
    mirror.delete_contact(jane.contact, by=technician)
    deleted_at = fresh(jane.contact).deleted_at
    with pytest.raises(LifecycleError, match="is deleted already"):
        mirror.delete_contact(jane.contact, by=technician)
    assert fresh(jane.contact).deleted_at == deleted_at
    assert AuditEvent.objects.filter(action="delete_contact").count() == 1


def test_restoring_lets_the_user_sign_in_again(client, jane, technician):
    mirror.delete_contact(jane.contact, by=technician)
    mirror.restore_contact(jane.contact, by=technician)
    assert fresh(jane.contact).deleted_at is None
    assert signs_in(client, fresh(jane))
    assert AuditEvent.objects.get(action="restore_contact").subject_user == jane


def test_restoring_a_live_contact_is_refused(jane, technician):
    with pytest.raises(LifecycleError, match="is not deleted"):
        mirror.restore_contact(jane.contact, by=technician)
    assert not AuditEvent.objects.filter(action="restore_contact").exists()


def test_a_merged_away_contact_cannot_be_restored(jane, wayne, technician):
    mirror.merge_contacts(wayne, jane.contact, by=technician)
    with pytest.raises(LifecycleError, match="was merged into Janet Doe .* Use Janet Doe instead"):
        mirror.restore_contact(jane.contact, by=technician)
    assert fresh(jane.contact).deleted_at is not None


def pending(user):
    rows = OutboxEmail.objects.filter(user=user, status=OutboxEmail.Status.PENDING)
    return list(rows.order_by("pk").values_list("kind", "to_email"))


def magic_link(user):
    secret = tokens.issue(user, TokenPurpose.MAGIC_LINK)
    return reverse("portal-magic-link", args=[user.portal_account.slug, secret])


@pytest.fixture
def invited(account, partner_role, technician):
    """An unconfirmed user: their invitation still in the outbox, and the link of one sent."""
    contact = ContactFactory(
        portal_account=account,
        name="Ivy Green",
        email="ivy@old.example",
        crm_account_name="Wayne Enterprises",
    )
    user = lifecycle.invite(
        account, user_type="partner", role=partner_role, by=technician, contact=contact
    )
    user.activation_path = reverse(
        "portal-activate", args=[account.slug, tokens.issue(user, TokenPurpose.ACTIVATION)]
    )
    return user


def activates(path):
    password = "a-new-password-for-ivy"
    answer = Client().post(path, {"new_password1": password, "new_password2": password})
    return answer.status_code == 302


def test_deleting_a_contact_stops_its_users_mail_and_links(invited, technician):
    mirror.delete_contact(invited.contact, by=technician)
    assert pending(invited) == []
    assert OutboxEmail.objects.get(user=invited).last_error == "The user's contact was deleted."
    assert not activates(invited.activation_path)  # an orphan cannot activate
    assert fresh(invited).state == UserState.UNCONFIRMED
    event = AuditEvent.objects.get(action="delete_contact")
    assert event.after["user"] == {"emails_cancelled": 1, "links_revoked": 1}
    # Restoring the contact brings none of them back: an admin reinvites.
    mirror.restore_contact(invited.contact, by=technician)
    assert pending(invited) == []
    assert not activates(invited.activation_path)


def test_deleting_a_contact_kills_an_enabled_users_links(jane, technician):
    link = magic_link(jane)
    lifecycle.send_login_email(jane, by=technician)
    mirror.delete_contact(jane.contact, by=technician)
    assert pending(jane) == []
    assert Client().get(link).status_code == 400


# --- moving an orphaned user ---


@pytest.fixture
def orphan(jane, technician):
    mirror.delete_contact(jane.contact, by=technician)
    return fresh(jane)


def test_move_an_orphan_to_a_contact_of_the_same_crm_account(client, orphan, wayne, technician):
    old = orphan.contact
    mirror.move_user_to_contact(orphan, wayne, by=technician)
    moved = fresh(orphan)
    assert moved.contact == wayne
    # The user now stands on that contact: its name is theirs, and its (lower-cased) email
    # once that address confirms it (they have a password a reset there would hand over).
    assert (moved.name, moved.email, moved.pending_email) == (
        "Janet Doe",
        "jane@example.com",
        "janet@wayne.example",
    )
    assert moved.is_active
    assert signs_in(client, moved)
    event = AuditEvent.objects.get(action="move_user_to_contact")
    assert event.subject_user == moved
    assert event.before["contact_id"] == old.contact_id
    assert event.after["contact_id"] == wayne.contact_id


def test_a_move_to_another_email_stops_the_old_addresss_mail_and_links(
    invited, wayne, account, technician
):
    # An orphan whose mail and links outlived the deletion (deleted before deletions stopped
    # them): moved to a contact with another email, the old address gets nothing more.
    Contact.objects.filter(pk=invited.contact_id).update(deleted_at=timezone.now())
    mirror.move_user_to_contact(fresh(invited), wayne, by=technician)
    assert not activates(invited.activation_path)
    # Their invitation was on its way: it goes to the new address, from the same person.
    assert pending(invited) == [(EmailKind.INVITATION, "janet@wayne.example")]
    row = OutboxEmail.objects.get(user=invited, status=OutboxEmail.Status.PENDING)
    assert row.context == {"invited_by": technician.name}
    event = AuditEvent.objects.get(action="move_user_to_contact")
    assert event.after["email_change"] == {
        "old_email": "ivy@old.example",
        "emails_cancelled": 1,
        "links_revoked": 1,
        "portal_sessions_ended": 0,
        "invitation_sent_to": "janet@wayne.example",
    }
    assert "invitation sent again to janet@wayne.example" in event.detail


def test_a_target_without_email_leaves_the_users_email(orphan, wayne, technician):
    Contact.objects.filter(pk=wayne.pk).update(email="")
    mirror.move_user_to_contact(orphan, fresh(wayne), by=technician)
    assert fresh(orphan).email == "jane@example.com"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"crm_account_name": "Stark Industries"}, "belongs to the CRM account 'Stark Industries'"),
        ({"deleted_at": "2026-01-01T00:00Z"}, "is deleted too"),
    ],
)
def test_move_refuses_a_wrong_target(orphan, wayne, technician, change, message):
    Contact.objects.filter(pk=wayne.pk).update(**change)
    with pytest.raises(LifecycleError, match=message):
        mirror.move_user_to_contact(orphan, fresh(wayne), by=technician)
    assert fresh(orphan).contact_id == orphan.contact_id
    assert not AuditEvent.objects.filter(action="move_user_to_contact").exists()


def test_move_refuses_a_contact_of_another_portal_account(orphan, other_account, technician):
    foreign = ContactFactory(portal_account=other_account, crm_account_name="Wayne Enterprises")
    with pytest.raises(LifecycleError, match="another portal account"):
        mirror.move_user_to_contact(orphan, foreign, by=technician)
    assert fresh(orphan).contact_id == orphan.contact_id


def test_move_refuses_a_contact_that_has_a_user(orphan, account, partner_role, technician):
    taken = PortalUserFactory(
        portal_account=account, role=partner_role, name="Tom Taken", contact__crm_account_name=""
    )
    Contact.objects.filter(pk=taken.contact_id).update(crm_account_name="Wayne Enterprises")
    with pytest.raises(LifecycleError, match=r"already has a portal user \(Tom Taken <"):
        mirror.move_user_to_contact(orphan, fresh(taken.contact), by=technician)
    assert fresh(orphan).contact_id == orphan.contact_id


def test_move_refuses_a_user_deleted_meanwhile(orphan, wayne, technician):
    User.objects.filter(pk=orphan.pk).delete()
    with pytest.raises(LifecycleError, match="Jane Doe was deleted"):
        mirror.move_user_to_contact(orphan, wayne, by=technician)


def test_move_refuses_a_user_whose_contact_is_live(jane, wayne, technician):
    with pytest.raises(LifecycleError, match="is not an orphaned user"):
        mirror.move_user_to_contact(jane, wayne, by=technician)


def test_move_refuses_an_email_another_user_has(orphan, wayne, account, partner_role, technician):
    PortalUserFactory(portal_account=account, role=partner_role, email="janet@wayne.example")
    with pytest.raises(LifecycleError, match="janet@wayne.example is already used"):
        mirror.move_user_to_contact(orphan, wayne, by=technician)
    assert fresh(orphan).contact_id == orphan.contact_id
    assert fresh(orphan).email == "jane@example.com"


# --- merging ---


def test_the_winner_takes_the_losers_user(client, jane, wayne, technician):
    loser = jane.contact
    assert mirror.merge_contacts(wayne, loser, by=technician) == wayne
    loser = fresh(loser)
    assert loser.deleted_at is not None
    assert loser.merged_into == wayne
    moved = fresh(jane)
    assert moved.contact == wayne
    assert (moved.email, moved.pending_email) == ("jane@example.com", "janet@wayne.example")
    assert signs_in(client, moved)
    event = AuditEvent.objects.get(action="merge_contacts")
    assert event.subject_user == jane
    assert event.before["user"]["contact_id"] == loser.contact_id
    assert event.after["user"]["contact_id"] == wayne.contact_id


def test_a_merge_to_another_email_stops_the_old_addresss_invitation(invited, wayne, technician):
    mirror.merge_contacts(wayne, invited.contact, by=technician)
    assert fresh(invited).email == "janet@wayne.example"  # never activated: follows at once
    assert not activates(invited.activation_path)
    assert pending(invited) == [(EmailKind.INVITATION, "janet@wayne.example")]
    event = AuditEvent.objects.get(action="merge_contacts")
    assert event.after["user"]["email_change"]["emails_cancelled"] == 1
    assert event.after["user"]["email_change"]["links_revoked"] == 1


def test_a_merge_to_another_email_leaves_an_activated_users_links_until_confirmed(
    jane, wayne, technician
):
    link = magic_link(jane)
    lifecycle.send_login_email(jane, by=technician)
    mirror.merge_contacts(wayne, jane.contact, by=technician)
    assert fresh(jane).email == "jane@example.com"
    assert (EmailKind.LOGIN_LINK, "jane@example.com") in pending(jane)
    assert Client().get(link).status_code == 200


def test_the_winner_keeps_its_user(jane, wayne, technician):
    winner = jane.contact
    mirror.merge_contacts(winner, wayne, by=technician)
    assert fresh(jane).contact == winner
    assert fresh(jane).is_active
    assert fresh(wayne).merged_into == winner


def test_both_with_users_is_refused_and_changes_nothing(jane, account, partner_role, technician):
    john = PortalUserFactory(
        portal_account=account, role=partner_role, name="John Roe", email="john@example.com"
    )
    with pytest.raises(LifecycleError) as refused:
        mirror.merge_contacts(jane.contact, john.contact, by=technician)
    assert str(refused.value).startswith(
        "Both contacts have portal users (Jane Doe <jane@example.com> and John Roe "
        "<john@example.com>): delete one of them"
    )
    assert fresh(john.contact).deleted_at is None
    assert fresh(john).contact == john.contact
    assert not AuditEvent.objects.filter(action="merge_contacts").exists()


def test_merging_into_itself_or_across_accounts_is_refused(jane, other_account, technician):
    with pytest.raises(LifecycleError, match="cannot be merged into itself"):
        mirror.merge_contacts(jane.contact, jane.contact, by=technician)
    foreign = ContactFactory(portal_account=other_account)
    with pytest.raises(LifecycleError, match="same portal account"):
        mirror.merge_contacts(foreign, jane.contact, by=technician)
    assert fresh(jane.contact).deleted_at is None


def test_the_same_merge_again_changes_nothing(jane, wayne, technician):
    mirror.merge_contacts(wayne, jane.contact, by=technician)
    before = fresh(jane.contact).updated_at
    mirror.merge_contacts(wayne, jane.contact, by=technician)
    assert fresh(jane.contact).updated_at == before
    assert AuditEvent.objects.filter(action="merge_contacts").count() == 1


def test_a_loser_merged_elsewhere_or_a_deleted_winner_is_refused(jane, wayne, account, technician):
    third = ContactFactory(portal_account=account, name="Third One")
    mirror.merge_contacts(wayne, jane.contact, by=technician)
    with pytest.raises(LifecycleError, match="was merged into Janet Doe .* already"):
        mirror.merge_contacts(third, jane.contact, by=technician)
    # The loser is deleted, so it cannot win a merge either.
    with pytest.raises(LifecycleError, match="is deleted: a merge keeps the winner"):
        mirror.merge_contacts(jane.contact, third, by=technician)


def test_merging_a_deleted_contact_fixes_its_orphaned_user(orphan, wayne, technician):
    mirror.merge_contacts(wayne, orphan.contact, by=technician)
    assert fresh(orphan).contact == wayne
    assert fresh(orphan).is_active


def test_a_chain_of_merges_points_at_the_last_winner(jane, wayne, account, technician):
    last = ContactFactory(portal_account=account, name="Last Winner")
    mirror.merge_contacts(wayne, jane.contact, by=technician)
    mirror.merge_contacts(last, wayne, by=technician)
    assert fresh(jane.contact).merged_into == last
    assert fresh(jane).contact == last


def test_a_merge_done_before_a_chain_is_done_still(jane, wayne, account, technician):
    last = ContactFactory(portal_account=account, name="Last Winner")
    mirror.merge_contacts(wayne, jane.contact, by=technician)
    mirror.merge_contacts(last, wayne, by=technician)
    events = AuditEvent.objects.count()
    # Jane's contact now points at Last Winner, which is what Janet Doe became: done already.
    assert mirror.merge_contacts(wayne, jane.contact, by=technician) == wayne
    assert fresh(jane.contact).merged_into == last
    assert AuditEvent.objects.count() == events


def test_a_merge_refuses_an_email_another_user_has(jane, wayne, account, partner_role, technician):
    PortalUserFactory(portal_account=account, role=partner_role, email="janet@wayne.example")
    with pytest.raises(LifecycleError, match="is already used by the portal user"):
        mirror.merge_contacts(wayne, jane.contact, by=technician)
    assert fresh(jane.contact).deleted_at is None
    assert User.objects.get(pk=jane.pk).contact == jane.contact
