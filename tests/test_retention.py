"""Retention (operations/retention.py): what is kept how long, applied by beat and by
`manage.py apply_retention`."""

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.utils import timezone

from accounts.models import AuditEvent, EmailKind, LoginToken, OutboxEmail, SignedInSession
from operations import retention, tasks
from tests.factories import PortalUserFactory

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


def token(user, *, expired_days_ago, used=False, name="t"):
    now = timezone.now()
    expires = now - expired_days_ago * DAY
    return LoginToken.objects.create(
        user=user,
        purpose="magic_link",
        token_hash=f"{name}-{expired_days_ago}-{used}",
        expires_at=expires,
        used_at=expires - timedelta(minutes=5) if used else None,
    )


def email(user, *, status, days_old):
    row = OutboxEmail.objects.create(
        user=user, to_email=user.email, kind=EmailKind.LOGIN_LINK, status=status
    )
    OutboxEmail.objects.filter(pk=row.pk).update(created_at=timezone.now() - days_old * DAY)
    return row


def audit_event(days_old):
    event = AuditEvent.objects.create(actor_label="a", action="sign_in", subject_label="s")
    AuditEvent.objects.filter(pk=event.pk).update(created_at=timezone.now() - days_old * DAY)
    return event


def session(user, *, expires_in, name):
    key = name.ljust(32, "k")
    Session.objects.create(
        session_key=key, session_data="", expire_date=timezone.now() + expires_in
    )
    SignedInSession.objects.create(
        user=user, session_key=key, door=SignedInSession.Door.PORTAL, last_seen_at=timezone.now()
    )
    return key


@pytest.fixture
def data(db):
    user = PortalUserFactory()
    return {
        "user": user,
        "tokens_gone": [
            token(user, expired_days_ago=31, name="old-unused"),
            token(user, expired_days_ago=31, used=True, name="old-used"),
        ],
        "tokens_kept": [
            token(user, expired_days_ago=-1, name="live"),
            token(user, expired_days_ago=29, used=True, name="recent-used"),
        ],
        "emails_gone": [
            email(user, status=status, days_old=91)
            for status in (
                OutboxEmail.Status.SENT,
                OutboxEmail.Status.CANCELLED,
                OutboxEmail.Status.FAILED,
            )
        ],
        "emails_kept": [
            email(user, status=OutboxEmail.Status.PENDING, days_old=400),
            email(user, status=OutboxEmail.Status.SENT, days_old=89),
        ],
        "audit": [audit_event(days_old=400), audit_event(days_old=10)],
        "expired_session": session(user, expires_in=-DAY, name="expired"),
        "live_session": session(user, expires_in=DAY, name="live"),
    }


def ids(rows):
    return {row.pk for row in rows}


def test_dead_tokens_old_emails_and_expired_sessions_go_and_the_rest_stays(data):
    counts = tasks.apply_retention()

    assert counts == {
        "login_tokens": 2,
        "outbox_emails": 3,
        "audit_events": 0,
        "sessions": 1,
        "signed_in_sessions": 0,
    }
    assert set(LoginToken.objects.values_list("pk", flat=True)) == ids(data["tokens_kept"])
    assert set(OutboxEmail.objects.values_list("pk", flat=True)) == ids(data["emails_kept"])
    assert AuditEvent.objects.count() == 2  # kept for ever by default
    assert set(Session.objects.values_list("pk", flat=True)) == {data["live_session"]}
    assert set(SignedInSession.objects.values_list("session_key", flat=True)) == {
        data["live_session"]
    }


def test_a_token_minted_for_a_deleted_email_stays_while_it_lives(data):
    sent = data["emails_gone"][0]
    live = data["tokens_kept"][0]
    LoginToken.objects.filter(pk=live.pk).update(outbox_email=sent)

    tasks.apply_retention()

    live.refresh_from_db()
    assert live.outbox_email_id is None


def test_audit_events_are_trimmed_once_a_retention_is_set(data, settings):
    settings.AUDIT_RETENTION_DAYS = 365

    assert retention.audit_events() == 1

    assert set(AuditEvent.objects.values_list("pk", flat=True)) == {data["audit"][1].pk}


def test_a_second_run_deletes_nothing(data, settings):
    settings.AUDIT_RETENTION_DAYS = 365
    tasks.apply_retention()

    assert tasks.apply_retention() == dict.fromkeys(retention.KINDS, 0)


def test_batches_go_on_until_everything_old_is_deleted(data, monkeypatch):
    monkeypatch.setattr(retention, "BATCH", 1)
    for n in range(3):
        token(data["user"], expired_days_ago=40 + n, name=f"more{n}")

    assert retention.login_tokens() == 5
    assert set(LoginToken.objects.values_list("pk", flat=True)) == ids(data["tokens_kept"])


def test_a_signed_in_session_whose_django_session_is_gone_goes_after_a_while(data):
    user = data["user"]
    fresh = SignedInSession.objects.create(
        user=user, session_key="f" * 32, door="portal", last_seen_at=timezone.now()
    )
    stale = SignedInSession.objects.create(
        user=user, session_key="s" * 32, door="portal", last_seen_at=timezone.now() - DAY
    )

    assert retention.signed_in_sessions() == 1

    remaining = set(SignedInSession.objects.values_list("pk", flat=True))
    assert stale.pk not in remaining
    assert fresh.pk in remaining  # it may be signing in right now


def test_the_dry_run_prints_counts_and_changes_nothing(data):
    before = [
        model.objects.count()
        for model in (LoginToken, OutboxEmail, AuditEvent, Session, SignedInSession)
    ]
    out = StringIO()

    call_command("apply_retention", "--dry-run", stdout=out)

    assert "login_tokens: would delete 2" in out.getvalue()
    assert "outbox_emails: would delete 3" in out.getvalue()
    assert "sessions: would delete 1" in out.getvalue()
    after = [
        model.objects.count()
        for model in (LoginToken, OutboxEmail, AuditEvent, Session, SignedInSession)
    ]
    assert after == before


def test_the_command_applies_it(data):
    out = StringIO()

    call_command("apply_retention", stdout=out)

    assert "login_tokens: deleted 2" in out.getvalue()
    assert LoginToken.objects.count() == 2


def test_beat_runs_it_daily_on_the_maintenance_queue(settings):
    entries = [
        entry
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
        if entry["task"] == tasks.apply_retention.name
    ]
    assert [entry["schedule"] for entry in entries] == [24 * 60 * 60]
    assert settings.CELERY_TASK_ROUTES["operations.tasks.*"] == {"queue": "maintenance"}
