"""Inactivity (accounts.inactivity): partner/customer users with no sign-in for N days are
warned M days before and then disabled, by the account's policy; the preview lists who and
when. The clock is moved, nothing sleeps."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from accounts import inactivity, lifecycle
from accounts.models import (
    AccessPolicy,
    AuditEvent,
    EmailKind,
    OutboxEmail,
    User,
    UserState,
    UserType,
)
from accounts.tasks import apply_inactivity_policies
from accounts.views import access_policies
from tests.conftest import console_sign_in
from tests.factories import PortalUserFactory

ACTOR = "Inactivity policy (Partner users, 30 days)"


@pytest.fixture
def people(account, other_account, account_admin, clock):
    def user(name, user_type=UserType.PARTNER, days=None, portal_account=account):
        last = None if days is None else clock.now - timedelta(days=days)
        return PortalUserFactory(
            portal_account=portal_account,
            user_type=user_type,
            name=name,
            email=f"{name.lower()}@x.example",
            last_login=last,
            activated_at=clock.now - timedelta(days=400),
        )

    AccessPolicy.objects.create(
        portal_account=account, partner_inactive_days=30, inactivity_warning_days=7
    )
    AccessPolicy.objects.create(portal_account=other_account)  # inactivity off: the default
    return {
        "pia": user("Pia", days=25),
        "old": user("Old", days=60),
        "recent": user("Recent", days=5),
        "cust": user("Cust", UserType.CUSTOMER, days=60),
        "emp": user("Emp", UserType.EMPLOYEE, days=100),
        "theirs": user("Theirs", days=60, portal_account=other_account),
        "admin": account_admin,
        # Activated moments ago and never signed in since: counted from the activation.
        "fresh": PortalUserFactory(portal_account=account, name="Fresh", email="f@x.example"),
    }


def state(user):
    return User.objects.get(pk=user.pk).state


def warnings_to(user):
    return OutboxEmail.objects.filter(user=user, kind=EmailKind.INACTIVITY_WARNING)


def run(capture):
    with capture(execute=True):
        return tuple(apply_inactivity_policies.delay().get())


def test_users_are_warned_then_disabled_and_a_second_run_changes_nothing(
    people, technician, clock, mailoutbox, django_capture_on_commit_callbacks
):
    User.objects.filter(pk=people["admin"].pk).update(last_login=clock.now - timedelta(days=99))
    assert run(django_capture_on_commit_callbacks) == (2, 0)
    assert {m.to[0] for m in mailoutbox} == {"pia@x.example", "old@x.example"}
    message = next(m for m in mailoutbox if m.to == ["old@x.example"])
    assert "not signed in to Acme Portal for 60 days" in message.body
    assert (clock.now + timedelta(days=7)).strftime("%B") in message.body
    assert "/p/acme/login/" in message.body
    event = AuditEvent.objects.filter(action="send_inactivity_warning").first()
    assert (event.actor, event.actor_label) == (None, ACTOR)
    # At once again: nothing new warned, mailed or audited.
    assert run(django_capture_on_commit_callbacks) == (0, 0)
    assert len(mailoutbox) == 2
    assert AuditEvent.objects.filter(action="send_inactivity_warning").count() == 2

    # Never disabled sooner than the warning's M days, even when long inactive.
    clock.advance(days=6)
    assert run(django_capture_on_commit_callbacks) == (0, 0)
    assert state(people["old"]) == UserState.ENABLED
    # Pia signs in: her warning is void.
    User.objects.filter(pk=people["pia"].pk).update(last_login=clock.now)

    clock.advance(days=1, hours=1)
    assert run(django_capture_on_commit_callbacks) == (0, 1)
    assert state(people["old"]) == UserState.DISABLED
    event = AuditEvent.objects.get(action="disable")
    assert (event.subject_user_id, event.actor, event.actor_label) == (
        people["old"].pk,
        None,
        ACTOR,
    )
    assert "No sign-in since" in event.detail
    assert run(django_capture_on_commit_callbacks) == (0, 0)
    assert AuditEvent.objects.filter(action="disable").count() == 1

    # Untouched: a recent sign-in, another type, employees, the account admin, another account.
    for name in ("pia", "recent", "cust", "emp", "admin", "theirs", "fresh"):
        assert state(people[name]) == UserState.ENABLED, name
    for name in ("recent", "cust", "emp", "admin", "theirs", "fresh"):
        assert not warnings_to(people[name]).exists(), name


def test_a_user_enabled_again_gets_a_new_n_days(people, technician, clock):
    inactivity.run()
    clock.advance(days=7, hours=1)
    inactivity.run()
    old = User.objects.get(pk=people["old"].pk)
    assert old.state == UserState.DISABLED
    lifecycle.enable(old, by=technician)
    clock.advance(days=1)
    assert inactivity.run() == (0, 0)
    assert state(old) == UserState.ENABLED
    clock.advance(days=23)  # 24 days after being enabled: past the warning line (30 - 7)
    inactivity.run()
    assert warnings_to(old).count() == 2
    assert state(old) == UserState.ENABLED


def preview_url(account, **params):
    from urllib.parse import urlencode

    url = reverse("inactivity-preview", kwargs={"slug": account.slug})
    return url + ("?" + urlencode(params) if params else "")


def test_the_preview_lists_who_and_when_with_the_saved_or_typed_numbers(
    account, people, technician, clock
):
    client = console_sign_in(Client(), technician)
    page = client.get(preview_url(account)).content.decode()
    assert "pia@x.example" in page
    assert "old@x.example" in page
    assert "recent@x.example" not in page
    assert "theirs@x.example" not in page
    assert "cust@x.example" not in page
    assert (clock.now + timedelta(days=7)).strftime("%b %-d, %Y") in page  # Old, once warned
    assert "saved policy" in page
    # Other numbers, not saved: nobody has been inactive for 200 days.
    page = client.get(preview_url(account, user_type="partner", days=200, warning_days=7))
    assert "Nobody" in page.content.decode()
    assert not OutboxEmail.objects.exists()
    assert AccessPolicy.objects.get(portal_account=account).partner_inactive_days == 30


def test_the_preview_is_paged_and_capped(account, people, technician, monkeypatch, clock):
    for n in range(4):
        PortalUserFactory(
            portal_account=account,
            name=f"Idle {n}",
            last_login=None,
            activated_at=clock.now - timedelta(days=40),
        )
    monkeypatch.setattr(access_policies, "PREVIEW_CAP", 3)
    monkeypatch.setattr(access_policies, "PREVIEW_PAGE_SIZE", 2)
    client = console_sign_in(Client(), technician)
    first = client.get(preview_url(account)).content.decode()
    assert "More than 3" in first
    assert "Page 1 of 2" in first
    # Activated but never signed in: counted from the activation.
    assert "Idle 0" in first
    second = client.get(
        preview_url(account, user_type="partner", days=30, warning_days=7, page=2)
    ).content.decode()
    assert "Page 2 of 2" in second


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"user_type": "partner", "days": 5, "warning_days": 1}, "Enter between 14 and 1095"),
        ({"user_type": "partner", "days": 30, "warning_days": 30}, "Make the warning shorter"),
        ({"user_type": "employee", "days": 30, "warning_days": 7}, "Select a valid choice"),
    ],
)
def test_preview_numbers_out_of_bounds_are_a_form_error(
    account, technician_client, params, message
):
    response = technician_client.get(preview_url(account, **params))
    assert response.status_code == 400
    assert message in response.content.decode()


def test_another_accounts_admin_gets_404(account, other_admin):
    client = console_sign_in(Client(), other_admin)
    assert client.get(preview_url(account)).status_code == 404


def test_the_policy_form_refuses_a_warning_as_long_as_the_inactivity(account, technician_client):
    response = technician_client.post(
        reverse("access-policies", kwargs={"slug": account.slug}),
        {
            "reminder_after_days": "3",
            "reminder_max": "2",
            "partner_inactive_days": "20",
            "inactivity_warning_days": "20",
        },
    )
    assert response.status_code == 400
    assert "make the Partner inactivity longer than 20 days" in response.content.decode()
    assert not AccessPolicy.objects.exists()


def test_the_inactivity_sweep_is_on_the_beat_schedule(settings):
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "accounts.tasks.apply_inactivity_policies" in tasks
