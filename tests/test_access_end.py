"""Expiry (accounts.expiry): an optional access end date per user, set on the user page, by the
API and by the CSV import; the user is disabled at the start of that day by beat, with the
policy as the audit event's actor, and enabled again like any other user. The clock is moved."""

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse

from accounts import expiry, lifecycle
from accounts.models import AuditEvent, OutboxEmail, User, UserState
from accounts.tasks import end_expired_access
from imports import portal_users
from imports.models import ImportJob
from tests.conftest import api_client_for, console_sign_in
from tests.factories import ContactFactory, PortalUserFactory


def access_end_url(user):
    return reverse("user-access-end", kwargs={"slug": user.portal_account.slug, "user_id": user.pk})


def api_url(contact, action=""):
    name = f"api-portal-user-{action}" if action else "api-portal-user"
    return reverse(name, kwargs={"slug": "acme", "contact_ref": contact.contact_id})


# --- the date: console, API, import ---


def test_the_user_page_sets_and_clears_the_date_with_an_audit_event(
    account, technician, technician_client, clock
):
    user = PortalUserFactory(portal_account=account, name="Cora Contractor")
    day = clock.now.date() + timedelta(days=30)
    response = technician_client.post(access_end_url(user), {"access_ends_on": day.isoformat()})
    assert response.status_code == 302
    assert User.objects.get(pk=user.pk).access_ends_on == day
    event = AuditEvent.objects.get(action="change_access_end")
    assert (event.actor, event.before, event.after) == (
        technician,
        {"access_ends_on": None},
        {"access_ends_on": day.isoformat()},
    )
    page = technician_client.get(response.url).content.decode()
    assert day.strftime("%b %-d, %Y") in page
    technician_client.post(access_end_url(user), {"access_ends_on": ""})
    assert User.objects.get(pk=user.pk).access_ends_on is None
    assert AuditEvent.objects.filter(action="change_access_end").count() == 2


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yesterday", "Enter a date as YYYY-MM-DD"),
        ("today", "Pick a date after today"),
        ("2999-01-01", "Pick a date within 10 years"),
    ],
)
def test_a_date_the_rules_refuse_is_a_form_error_and_changes_nothing(
    account, technician_client, clock, value, message
):
    user = PortalUserFactory(portal_account=account)
    if value == "today":
        value = clock.now.date().isoformat()
    response = technician_client.post(access_end_url(user), {"access_ends_on": value})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert User.objects.get(pk=user.pk).access_ends_on is None
    assert not AuditEvent.objects.filter(action="change_access_end").exists()


def test_another_accounts_admin_gets_404(account, other_admin):
    user = PortalUserFactory(portal_account=account)
    client = console_sign_in(Client(), other_admin)
    response = client.post(access_end_url(user), {"access_ends_on": "2030-01-01"})
    assert response.status_code == 404
    assert User.objects.get(pk=user.pk).access_ends_on is None


def test_the_api_sets_the_date_on_enable_and_changes_it(account, partner_role, api_token, clock):
    client = api_client_for(api_token.secret)
    contact = ContactFactory(portal_account=account, email="cora@x.example")
    day = (clock.now + timedelta(days=60)).date()
    response = client.post(
        api_url(contact, "enable"),
        {"role": partner_role.name, "access_ends_on": day.isoformat()},
        content_type="application/json",
    )
    assert response.status_code == 201
    assert response.json()["portal_user"]["access_ends_on"] == day.isoformat()
    bad = client.post(
        api_url(contact, "access-end"),
        {"access_ends_on": "31/01/2027"},
        content_type="application/json",
    )
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "access_ends_on"
    cleared = client.post(
        api_url(contact, "access-end"), {"access_ends_on": None}, content_type="application/json"
    )
    assert cleared.status_code == 200
    assert cleared.json()["portal_user"]["access_ends_on"] is None


def test_an_enable_with_a_refused_date_creates_no_user(account, partner_role, api_token, clock):
    contact = ContactFactory(portal_account=account, email="cora@x.example")
    response = api_client_for(api_token.secret).post(
        api_url(contact, "enable"),
        {"role": partner_role.name, "access_ends_on": clock.now.date().isoformat()},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert not User.objects.filter(contact=contact).exists()


def test_the_import_reads_an_optional_access_end_column(
    account, partner_role, settings, tmp_path, clock
):
    settings.MEDIA_ROOT = tmp_path
    good = ContactFactory(portal_account=account, email="a@x.example")
    bad = ContactFactory(portal_account=account, email="b@x.example")
    none = ContactFactory(portal_account=account, email="c@x.example")
    day = (clock.now + timedelta(days=90)).date().isoformat()
    data = (
        "ContactId,Role,AccessEndsOn\n"
        f"{good.contact_id},{partner_role.name},{day}\n"
        f"{bad.contact_id},{partner_role.name},next spring\n"
        f"{none.contact_id},{partner_role.name},\n"
    )
    job = ImportJob(
        portal_account=account, original_filename="u.csv", options={"send_activation": False}
    )
    job.source_file.save("u.csv", ContentFile(data.encode()), save=False)
    job.save()
    portal_users.apply(job)
    job.refresh_from_db()
    assert (job.created, job.failed) == (2, 1)
    assert str(User.objects.get(contact=good).access_ends_on) == day
    assert User.objects.get(contact=none).access_ends_on is None
    assert not User.objects.filter(contact=bad).exists()
    assert AuditEvent.objects.filter(action="change_access_end").count() == 1


# --- the sweep ---


def test_the_user_is_disabled_at_the_date_by_the_policy_once(
    account, other_account, technician, clock, mailoutbox
):
    cora = PortalUserFactory(portal_account=account, name="Cora")
    later = PortalUserFactory(portal_account=account, name="Later")
    theirs = PortalUserFactory(portal_account=other_account, name="Theirs")
    lifecycle.set_access_end(cora, (clock.now + timedelta(days=2)).date(), by=technician)
    lifecycle.set_access_end(later, (clock.now + timedelta(days=9)).date(), by=technician)
    lifecycle.set_access_end(theirs, (clock.now + timedelta(days=3)).date(), by=technician)
    OutboxEmail.objects.all().delete()

    clock.advance(days=1)
    assert end_expired_access.delay().get() == 0
    clock.advance(days=1)
    assert end_expired_access.delay().get() == 1

    cora.refresh_from_db()
    assert cora.state == UserState.DISABLED
    assert cora.access_ends_on is None  # so that enabling gives access again
    event = AuditEvent.objects.get(action="disable", subject_user=cora)
    assert (event.actor, event.actor_label) == (None, "Access end date policy")
    assert "Access end date" in event.detail
    assert not OutboxEmail.objects.exists()
    assert not mailoutbox
    # Again: nothing changes.
    assert expiry.run() == 0
    assert AuditEvent.objects.filter(action="disable").count() == 1
    # The other account's user and the later date are not touched yet.
    assert User.objects.get(pk=theirs.pk).state == UserState.ENABLED
    assert User.objects.get(pk=later.pk).state == UserState.ENABLED

    # Enabled again like any other user: the sweep leaves them be.
    lifecycle.enable(cora, by=technician)
    clock.advance(days=1)
    expiry.run()
    assert User.objects.get(pk=cora.pk).state == UserState.ENABLED
    assert User.objects.get(pk=theirs.pk).state == UserState.DISABLED  # its own date came


def test_a_date_moved_later_meanwhile_is_respected(account, technician, clock):
    cora = PortalUserFactory(portal_account=account)
    lifecycle.set_access_end(cora, (clock.now + timedelta(days=1)).date(), by=technician)
    clock.advance(days=1)
    # As if an admin moved the date between the sweep's read and its lock.
    User.objects.filter(pk=cora.pk).update(access_ends_on=(clock.now + timedelta(days=5)).date())
    assert expiry._end_access(cora.pk, clock.now.date()) is False
    assert User.objects.get(pk=cora.pk).state == UserState.ENABLED


def test_the_expiry_sweep_is_on_the_beat_schedule(settings):
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "accounts.tasks.end_expired_access" in tasks


def test_another_accounts_token_gets_404_and_changes_nothing(account, other_account, mssp_admin):
    from api.api_tokens import create_token

    user = PortalUserFactory(portal_account=account)
    _token, secret = create_token(other_account, "Their CRM", by=mssp_admin)
    response = api_client_for(secret).post(
        api_url(user.contact, "access-end"),
        {"access_ends_on": "2030-01-01"},
        content_type="application/json",
    )
    assert response.status_code == 404
    assert User.objects.get(pk=user.pk).access_ends_on is None
