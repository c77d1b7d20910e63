"""Invitation reminders (accounts.reminders): after N days, at most K times, per account and off
by default; the clock is moved, nothing sleeps."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from accounts import lifecycle, reminders
from accounts.models import AccessPolicy, AuditEvent, EmailKind, LoginToken, OutboxEmail, User
from accounts.tasks import send_invitation_reminders
from tests.conftest import console_sign_in
from tests.factories import ContactFactory, RoleFactory


def invite(account, role, by, name):
    contact = ContactFactory(portal_account=account, name=name, email=f"{name.lower()}@x.example")
    return lifecycle.invite(account, role=role, by=by, contact=contact)


@pytest.fixture
def policy(account, clock):
    return AccessPolicy.objects.create(
        portal_account=account,
        reminders_on=True,
        reminder_after_days=3,
        reminder_max=2,
        reminders_checked_until=clock.now,
    )


def reminder_rows(user=None):
    rows = OutboxEmail.objects.filter(kind=EmailKind.INVITATION_REMINDER)
    return rows.filter(user=user) if user else rows


def run(capture):
    with capture(execute=True):
        return send_invitation_reminders.delay().get()


def test_reminders_go_after_n_days_at_most_k_times_and_a_second_run_changes_nothing(
    account,
    other_account,
    partner_role,
    technician,
    policy,
    clock,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        grace = invite(account, partner_role, technician, "Grace")
        gus_role = RoleFactory(portal_account=other_account)
        theirs = invite(other_account, gus_role, technician, "Gus")
    AccessPolicy.objects.create(portal_account=other_account)  # reminders off: the default
    mailoutbox.clear()

    clock.advance(days=2, hours=23)
    assert run(django_capture_on_commit_callbacks) == 0

    clock.advance(hours=2)
    assert run(django_capture_on_commit_callbacks) == 1
    [message] = mailoutbox
    assert message.to == ["grace@x.example"]
    assert message.subject == "Reminder: your invitation to Acme Portal"
    assert "/p/acme/activate/" in message.body
    event = AuditEvent.objects.get(action="send_invitation_reminder")
    assert (event.subject_user, event.actor, event.actor_label) == (
        grace,
        None,
        "Invitation reminder policy",
    )
    grace.refresh_from_db()
    assert (grace.reminders_sent, grace.last_invited_at) == (1, clock.now)
    # The reminder's link is the one live invitation link.
    assert LoginToken.objects.filter(user=grace, purpose="activation", revoked_at=None).count() == 1

    # Again at once: nothing new sent, mailed or audited.
    assert run(django_capture_on_commit_callbacks) == 0
    assert len(mailoutbox) == 1
    assert AuditEvent.objects.filter(action="send_invitation_reminder").count() == 1

    clock.advance(days=3)
    assert run(django_capture_on_commit_callbacks) == 1
    clock.advance(days=3)
    assert run(django_capture_on_commit_callbacks) == 0  # K = 2: no third
    clock.advance(days=30)
    assert run(django_capture_on_commit_callbacks) == 0
    grace.refresh_from_db()
    assert grace.reminders_sent == 2
    assert reminder_rows(grace).count() == 2
    # The other account (reminders off) was never touched.
    assert not reminder_rows(theirs).exists()
    assert User.objects.get(pk=theirs.pk).reminders_sent is None


def test_turning_reminders_on_does_not_remind_every_old_invitation(
    account, partner_role, technician, clock
):
    invite(account, partner_role, technician, "Old")
    clock.advance(days=10)
    response = console_sign_in(Client(), technician).post(
        reverse("access-policies", kwargs={"slug": account.slug}),
        {"reminders_on": "on", "reminder_after_days": "3", "reminder_max": "3"}
        | {"inactivity_warning_days": "14"},
    )
    assert response.status_code == 302
    assert reminders.run() == 0
    # Reminder 4 would be at day 12; K = 3 ends at day 9: this invitation is never reminded.
    clock.advance(days=3)
    assert reminders.run() == 0
    new = invite(account, partner_role, technician, "New")
    clock.advance(days=3, minutes=1)
    assert reminders.run() == 1
    assert reminder_rows(new).count() == 1


def test_who_is_not_reminded(account, partner_role, technician, policy, clock):
    activated = invite(account, partner_role, technician, "Activated")
    reinvited = invite(account, partner_role, technician, "Reinvited")
    disabled = invite(account, partner_role, technician, "Disabled")
    deleted_contact = invite(account, partner_role, technician, "Orphan")
    silent = lifecycle.invite(
        account,
        role=partner_role,
        by=technician,
        contact=ContactFactory(portal_account=account, name="Silent", email="s@x.example"),
        send_email=False,
    )
    lifecycle.activate(activated, "a-long-password-1")
    lifecycle.disable(disabled, by=technician)
    deleted_contact.contact.deleted_at = clock.now
    deleted_contact.contact.save()
    clock.advance(days=2)
    lifecycle.reinvite(reinvited, by=technician)  # a person sent one a day before the reminder
    clock.advance(days=1, hours=1)
    assert reminders.run() == 0
    for user in (activated, reinvited, disabled, deleted_contact, silent):
        assert not reminder_rows(user).exists(), user.name


def test_the_unconfirmed_tab_shows_reminders_sent_and_the_next_one(
    account, partner_role, technician, policy, clock
):
    invite(account, partner_role, technician, "Grace")
    clock.advance(days=3, minutes=1)
    reminders.run()
    page = (
        console_sign_in(Client(), technician)
        .get(reverse("users", kwargs={"slug": account.slug}) + "?tab=unconfirmed")
        .content.decode()
    )
    assert "1 sent" in page
    # Reminder 2 is due 6 days after the invitation.
    assert f"next {(clock.now + timedelta(days=3, minutes=-1)):%b %-d, %Y}" in page


def test_the_reminder_sweep_is_on_the_beat_schedule(settings):
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "accounts.tasks.send_invitation_reminders" in tasks


def test_a_reinvitation_replaces_a_pending_reminder(
    account, partner_role, technician, policy, clock
):
    grace = invite(account, partner_role, technician, "Grace")
    clock.advance(days=3, minutes=1)
    assert reminders.run() == 1
    lifecycle.reinvite(grace, by=technician)
    rows = dict(reminder_rows(grace).values_list("kind", "status"))
    assert rows == {EmailKind.INVITATION_REMINDER: OutboxEmail.Status.CANCELLED}


def test_a_reminder_goes_out_in_the_accounts_own_wording(
    account, partner_role, technician, policy, clock, mailoutbox, django_capture_on_commit_callbacks
):
    from mail.models import CustomEmail

    CustomEmail.objects.create(
        portal_account=account,
        kind=EmailKind.INVITATION_REMINDER,
        subject="Still waiting for you, {name}",
        body="Hi {name}, your {portal} account is one click away: {link} ({expires}).",
    )
    with django_capture_on_commit_callbacks(execute=True):
        invite(account, partner_role, technician, "Grace")
    mailoutbox.clear()
    clock.advance(days=3, hours=1)
    assert run(django_capture_on_commit_callbacks) == 1
    [message] = mailoutbox
    assert message.subject == "Still waiting for you, Grace"
    assert "one click away: http" in message.body
    assert "/p/acme/activate/" in message.body
