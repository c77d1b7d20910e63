"""The System page (/system/) tells MSSP staff in words what /health/ready/ tells monitoring, and
shows what waits: the outbox backlog per portal account, failed emails (retried from here, in
one transaction with an audit event), running imports (and which stalled), the heartbeats of
workers and beat, and the last retention run."""

import re
from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import audit
from accounts.models import AuditEvent, EmailKind, LoginToken, OutboxEmail, UserState
from imports.models import ImportJob
from mail import outbox
from operations import email_retries, retention, tasks
from operations.models import Heartbeat, RetentionRun
from tests.factories import PortalAccountFactory, PortalUserFactory

URL = "/system/"
RETRY_URL = "/system/failed-emails/retry/"


@pytest.fixture(autouse=True)
def _with_a_broker(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "memory://"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


def failed_email(account, *, kind=EmailKind.LOGIN_LINK, user=None, error="SMTPServerDisconnected"):
    user = user or PortalUserFactory(portal_account=account, name="Fay Failed")
    row = outbox.queue_email(user, kind)
    OutboxEmail.objects.filter(pk=row.pk).update(
        status=OutboxEmail.Status.FAILED,
        attempts=8,
        last_error=f"{error}: Connection unexpectedly closed",
    )
    row.refresh_from_db()
    return row


def waiting(account, count, *, minutes_ago=0):
    rows = [
        outbox.queue_email(PortalUserFactory(portal_account=account), EmailKind.LOGIN_LINK)
        for _ in range(count)
    ]
    OutboxEmail.objects.filter(pk__in=[r.pk for r in rows]).update(
        created_at=timezone.now() - timedelta(minutes=minutes_ago)
    )
    return rows


def running_import(account, by, *, name="people.csv", processed=5, total=10, progress_ago=None):
    now = timezone.now()
    return ImportJob.objects.create(
        portal_account=account,
        status=ImportJob.Status.RUNNING,
        original_filename=name,
        processed=processed,
        total_rows=total,
        failed=1,
        started_by=by,
        started_at=now - timedelta(hours=1),
        progress_at=now - (progress_ago or timedelta(seconds=5)),
    )


def heartbeat(name, kind=Heartbeat.Kind.WORKER, seconds_ago=3):
    seen = timezone.now() - timedelta(seconds=seconds_ago)
    return Heartbeat.objects.create(
        name=name, kind=kind, pid=77, started_at=seen - timedelta(hours=2), seen_at=seen
    )


def text_of(response):
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


# --- Who sees it ---


@pytest.mark.parametrize("persona", ["admin_client", "technician_client"])
def test_mssp_staff_have_the_page_in_their_menu(request, persona):
    client = request.getfixturevalue(persona)

    home = client.get("/accounts/")
    response = client.get(URL)

    assert f'href="{URL}"' in home.content.decode()
    assert response.status_code == 200
    assert "<h1>System</h1>" in response.content.decode()


def test_an_account_admin_neither_sees_nor_opens_it(account_admin_client, account):
    dashboard = account_admin_client.get(f"/accounts/{account.slug}/")

    assert f'href="{URL}"' not in dashboard.content.decode()
    assert account_admin_client.get(URL).status_code == 403


def test_anonymous_is_sent_to_sign_in(client, db):
    response = client.get(URL)

    assert response.status_code == 302
    assert response["Location"].startswith("/sign-in/")


# --- What it shows ---


def test_the_checks_in_words(admin_client):
    heartbeat("celery@web-1")
    heartbeat("beat@web-1", Heartbeat.Kind.BEAT, seconds_ago=500)

    page = text_of(admin_client.get(URL))

    assert "Database OK Answered in" in page
    assert "Celery worker OK 1 worker alive; last heartbeat 3 s ago." in page
    assert (
        "Celery beat Problem Has not run in the last 120 s (last seen 8 min ago). Unsent emails "
        "are not re-queued and stalled imports not resumed." in page
    )
    assert "Outbox OK No email is waiting." in page


def test_worker_and_beat_heartbeats(admin_client):
    heartbeat("celery@web-1", seconds_ago=4)
    heartbeat("celery@web-2", seconds_ago=900)
    stopped = heartbeat("celery@web-3")
    Heartbeat.objects.filter(pk=stopped.pk).update(stopped_at=timezone.now())
    heartbeat("beat@web-1", Heartbeat.Kind.BEAT, seconds_ago=12)

    page = text_of(admin_client.get(URL))

    assert "Celery worker celery@web-1 pid 77 · running since" in page
    assert re.search(r"celery@web-1 pid 77 · running since [^<]+? Alive 4 s ago", page)
    assert re.search(r"celery@web-2 pid 77 · running since [^<]+? Silent 15 min ago", page)
    assert re.search(r"celery@web-3 pid 77 · running since [^<]+? Stopped 3 s ago shut down", page)
    assert re.search(r"Celery beat beat@web-1 pid 77 · running since [^<]+? Alive 12 s ago", page)


def test_the_backlog_per_portal_account_longest_wait_first(admin_client, account, other_account):
    waiting(account, 2, minutes_ago=3)
    waiting(other_account, 1, minutes_ago=40)

    page = text_of(admin_client.get(URL))

    assert "3 emails waiting, by portal account, the longest wait first." in page
    assert "Globex Portal 1 40 min ago Acme Portal 2 3 min ago" in page
    assert "Outbox Problem 3 emails waiting; the oldest was queued 40 min ago" in page


def test_behind_a_huge_backlog_the_accounts_are_those_of_the_oldest_emails(
    admin_client, account, other_account, monkeypatch
):
    """The page reads at most COUNT_LIMIT waiting emails, the oldest: a 1,000,000-row import's
    invitations are not all read at every view. Here the limit is 3."""
    from operations import figures

    monkeypatch.setattr(figures, "COUNT_LIMIT", 3)
    waiting(other_account, 2, minutes_ago=40)
    waiting(account, 1, minutes_ago=30)
    waiting(account, 4, minutes_ago=3)  # past the oldest 3: not read

    page = text_of(admin_client.get(URL))

    assert "3 or more emails waiting" in page
    assert "The accounts and counts are those of the oldest 3." in page
    assert "Globex Portal 2 40 min ago Acme Portal 1 30 min ago" in page


def test_failed_emails_with_their_error_and_a_retry_button(admin_client, account):
    row = failed_email(account)

    response = admin_client.get(URL)
    page = text_of(response)

    assert "1 email was given up on after every attempt failed." in page
    assert (
        f"Login link to {row.to_email} SMTPServerDisconnected: Connection unexpectedly closed "
        "Acme Portal · 8 attempts · queued" in page
    )
    assert f'name="email_id" value="{row.pk}"' in response.content.decode()
    assert "Retry the login link email to" in page


def test_running_imports(admin_client, account, mssp_admin):
    job = running_import(account, mssp_admin)

    response = admin_client.get(URL)
    page = text_of(response)

    assert (
        "people.csv Portal users · Acme Portal Running Last progress 5 s ago. 5 of 10 1 failed"
        in page
    )
    assert "by Mia Admin" in page
    assert f'href="/accounts/acme/imports/{job.pk}/"' in response.content.decode()


def test_nothing_to_show(admin_client):
    page = text_of(admin_client.get(URL))

    assert "No worker or beat has sent a heartbeat yet." in page
    assert "No email is waiting." in page
    assert "No email failed." in page
    assert "No import is running." in page
    assert (
        "Retention has not run yet. Beat runs it daily; manage.py apply_retention runs it now"
        in (page)
    )


def test_the_page_costs_the_same_queries_however_much_there_is(admin_client, mssp_admin):
    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(URL).status_code == 200
        return len(captured)

    account = PortalAccountFactory()
    failed_email(account)
    waiting(account, 1)
    running_import(account, mssp_admin)
    heartbeat("celery@a")
    retention.apply()
    # The session's own writes (its last activity, at most once a minute) go with a first one.
    queries()
    few = queries()
    for _ in range(5):
        more = PortalAccountFactory()
        failed_email(more)
        waiting(more, 2)
        running_import(more, mssp_admin)
        running_import(more, mssp_admin, progress_ago=timedelta(minutes=20))
    heartbeat("celery@b")
    retention.apply()

    assert queries() == few


def test_a_stalled_import_says_so_with_how_long_ago(admin_client, account, mssp_admin, settings):
    settings.IMPORT_STALL_MINUTES = 3
    running_import(account, mssp_admin, name="alive.csv", progress_ago=timedelta(minutes=2))
    running_import(account, mssp_admin, name="dead.csv", progress_ago=timedelta(minutes=12))

    response = admin_client.get(URL)
    page = text_of(response)

    assert "alive.csv Portal users · Acme Portal Running Last progress 2 min ago." in page
    assert (
        "dead.csv Portal users · Acme Portal Stalled Its worker stopped reporting progress: "
        "last progress 12 min ago." in page
    )
    assert "has not reported progress for 3 min has stalled" in page
    html = response.content.decode()
    assert re.search(r'<tr class="row-warn">\s*<td><a href="[^"]+">dead.csv<', html)
    assert re.search(r"<tr>\s*<td><a href=\"[^\"]+\">alive.csv<", html)


# --- The last retention run ---


def expired_tokens(count):
    user = PortalUserFactory()
    long_ago = timezone.now() - timedelta(days=400)
    LoginToken.objects.bulk_create(
        LoginToken(user=user, purpose="magic_link", token_hash=f"old-{n}", expires_at=long_ago)
        for n in range(count)
    )


def retention_run(*, hours_ago, counts, finished=True, source=RetentionRun.Source.BEAT):
    started = timezone.now() - timedelta(hours=hours_ago)
    return RetentionRun.objects.create(
        source=source,
        started_at=started,
        finished_at=started + timedelta(seconds=42) if finished else None,
        counts=counts,
    )


def test_beats_retention_run_is_shown_with_what_it_deleted(admin_client):
    expired_tokens(3)

    tasks.apply_retention()
    page = text_of(admin_client.get(URL))

    assert re.search(
        r"The last run started \d+ s ago \([^)]+\), by the daily beat task, took \d+ s and "
        r"deleted 3 rows\.",
        page,
    )
    assert (
        "Login tokens 3 Emails 0 Audit events 0 Expired sessions 0 "
        "Rows of sessions gone otherwise 0" in page
    )
    assert "Retention has not run yet" not in page


def test_the_command_records_its_run_but_a_dry_run_does_not(admin_client):
    expired_tokens(2)

    call_command("apply_retention", "--dry-run", stdout=mock.Mock())
    assert not RetentionRun.objects.exists()
    call_command("apply_retention", stdout=mock.Mock())

    run = RetentionRun.objects.get()
    assert run.source == "command"
    assert run.counts["login_tokens"] == 2
    assert run.finished_at >= run.started_at
    assert "by manage.py apply_retention, took" in text_of(admin_client.get(URL))


def test_the_newest_run_is_the_one_shown(admin_client):
    retention_run(hours_ago=30, counts={"login_tokens": 7})
    retention_run(hours_ago=2, counts={"login_tokens": 1, "outbox_emails": 4})

    page = text_of(admin_client.get(URL))

    assert "The last run started 2 h ago" in page
    assert "took 42 s and deleted 5 rows." in page
    assert "Login tokens 1 Emails 4" in page


def test_a_kind_that_failed_says_so(admin_client):
    with mock.patch.dict(
        retention.KINDS, {"outbox_emails": mock.Mock(side_effect=RuntimeError("db gone"))}
    ):
        retention.apply()

    page = text_of(admin_client.get(URL))

    assert "Emails Failed its error is in the log" in page
    assert RetentionRun.objects.get().counts["outbox_emails"] is None


def test_an_unfinished_run_says_it_has_not_finished(admin_client):
    retention_run(hours_ago=3, counts={}, finished=False)

    page = text_of(admin_client.get(URL))

    assert (
        "by the daily beat task, and has not finished: it is still running, or its process "
        "stopped" in page
    )


def test_a_run_more_than_a_day_old_warns_that_beat_has_not_run_it(admin_client):
    retention_run(hours_ago=50, counts={"login_tokens": 0})

    page = text_of(admin_client.get(URL))

    assert (
        "The last retention run started 2 days ago. Beat runs it daily, so it has not run "
        "since" in page
    )


def test_a_run_of_today_does_not_warn(admin_client):
    retention_run(hours_ago=20, counts={"login_tokens": 0})

    assert "has not run since" not in text_of(admin_client.get(URL))


# --- Retrying a failed email ---


def test_retrying_gives_the_email_fresh_attempts_and_audits_it(
    admin_client, account, mssp_admin, django_capture_on_commit_callbacks
):
    row = failed_email(account)

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(RETRY_URL, {"email_id": row.pk}, follow=True)

    assert response.redirect_chain == [(URL, 302)]
    assert f"The login link email to {row.to_email} is queued again." in text_of(response)
    row.refresh_from_db()
    # Handed to Celery once committed (here run at once): sent.
    assert (row.status, row.attempts) == ("sent", 1)
    assert [message.to for message in mail.outbox] == [[row.to_email]]
    event = AuditEvent.objects.get(action="email_retried")
    assert event.actor == mssp_admin
    assert event.portal_account == account
    assert event.subject_user == row.user
    assert event.before == {
        "status": "failed",
        "attempts": 8,
        "last_error": "SMTPServerDisconnected: Connection unexpectedly closed",
    }
    assert event.after == {"status": "pending", "attempts": 0}
    assert event.detail == f"Login link email to {row.to_email}"


def test_the_retry_and_its_audit_event_are_one_transaction(account, mssp_admin):
    row = failed_email(account)

    with (
        mock.patch.object(audit, "record", side_effect=RuntimeError("audit down")),
        pytest.raises(RuntimeError),
    ):
        email_retries.retry_failed_email(row.pk, by=mssp_admin)

    row.refresh_from_db()
    assert (row.status, row.attempts) == ("failed", 8)


def test_a_technician_may_retry(technician_client, account):
    row = failed_email(account)

    technician_client.post(RETRY_URL, {"email_id": row.pk})

    row.refresh_from_db()
    assert row.status == "pending"


def test_an_account_admin_may_not_retry(account_admin_client, account):
    row = failed_email(account)

    response = account_admin_client.post(RETRY_URL, {"email_id": row.pk})

    assert response.status_code == 403
    row.refresh_from_db()
    assert row.status == "failed"
    assert not AuditEvent.objects.filter(action="email_retried").exists()


def test_retrying_twice_says_it_is_retried_already(admin_client, account):
    row = failed_email(account)
    admin_client.post(RETRY_URL, {"email_id": row.pk})

    response = admin_client.post(RETRY_URL, {"email_id": row.pk}, follow=True)

    assert "This email is pending now, not failed: somebody retried it already." in text_of(
        response
    )
    assert AuditEvent.objects.filter(action="email_retried").count() == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("disabled", "Fay Failed is disabled: enable them first."),
        ("newer", "A newer login link email went to"),
        ("deleted", "Its user was deleted: there is nobody to send it to."),
    ],
)
def test_a_retry_that_makes_no_sense_is_refused(admin_client, account, change, message):
    row = failed_email(account)
    if change == "disabled":
        row.user.state = UserState.DISABLED
        row.user.save(update_fields=["state"])
    elif change == "newer":
        outbox.queue_email(row.user, EmailKind.LOGIN_LINK)
    else:
        OutboxEmail.objects.filter(pk=row.pk).update(user=None)

    response = admin_client.post(RETRY_URL, {"email_id": row.pk}, follow=True)

    assert message in text_of(response)
    row.refresh_from_db()
    assert row.status == "failed"


@pytest.mark.parametrize("email_id", ["", "abc", "9" * 40])
def test_a_retry_without_a_sane_id_is_a_400(admin_client, email_id):
    assert admin_client.post(RETRY_URL, {"email_id": email_id}).status_code == 400


def test_a_retry_of_an_email_that_is_gone(admin_client):
    response = admin_client.post(RETRY_URL, {"email_id": "123456"}, follow=True)

    assert "This email no longer exists." in text_of(response)


def test_retry_takes_posts_only(admin_client):
    assert admin_client.get(RETRY_URL).status_code == 405
