import smtplib
from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone

from accounts import lifecycle
from accounts.models import EmailKind, LoginToken, OutboxEmail, TokenPurpose, UserType
from mail import delivery, outbox
from mail.tasks import requeue_unsent, requeue_unsent_emails, send_due_emails, send_outbox_email
from tests.factories import ContactFactory, PortalUserFactory


@pytest.fixture
def invited(account, partner_role, technician):
    contact = ContactFactory(portal_account=account, name="Grace Hopper", email="grace@example.com")
    return lifecycle.invite(
        account, user_type=UserType.PARTNER, role=partner_role, by=technician, contact=contact
    )


def test_the_email_is_queued_only_when_the_change_commits(
    account, partner_role, technician, django_capture_on_commit_callbacks
):
    contact = ContactFactory(portal_account=account, email="grace@example.com")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        lifecycle.invite(
            account, user_type=UserType.PARTNER, role=partner_role, by=technician, contact=contact
        )
    assert OutboxEmail.objects.get().status == "pending"
    assert len(mail.outbox) == 0
    # The wake-up of the email's lane (and the count of queued emails, and the address's
    # count of emails asked for) wait for the commit.
    assert len(callbacks) == 3
    for callback in callbacks:
        callback()
    assert len(mail.outbox) == 1


def test_a_committed_invitation_is_sent_with_html_text_and_a_working_link(
    account, partner_role, technician, django_capture_on_commit_callbacks
):
    contact = ContactFactory(portal_account=account, name="Grace Hopper", email="grace@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.invite(
            account, user_type=UserType.PARTNER, role=partner_role, by=technician, contact=contact
        )

    row = OutboxEmail.objects.get()
    assert row.status == "sent"
    assert row.sent_at is not None
    assert row.subject == "You're invited to Acme Portal"
    [message] = mail.outbox
    assert message.to == ["grace@example.com"]
    assert "Theo Tech has invited you to Acme Portal" in message.body
    assert "expires in 7 days" in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert "Activate your account" in html
    link = next(word for word in message.body.split() if "/p/acme/activate/" in word)
    secret = link.rstrip("/").rsplit("/", 1)[-1]
    assert LoginToken.objects.get(purpose=TokenPurpose.ACTIVATION).is_live
    assert secret not in str(OutboxEmail.objects.values().get())  # the row holds no secret


@pytest.mark.parametrize(
    ("kind", "subject", "link_part"),
    [
        (EmailKind.REINVITATION, "Your invitation to Acme Portal", "/activate/"),
        (EmailKind.PASSWORD_RESET, "Reset your Acme Portal password", "/reset/"),
        (EmailKind.ACCESS_RESTORED, "Your access to Acme Portal is restored", "/link/"),
        (EmailKind.LOGIN_LINK, "Your sign-in link for Acme Portal", "/link/"),
    ],
)
def test_every_email_kind_renders(account, partner_role, kind, subject, link_part):
    user = PortalUserFactory(portal_account=account, role=partner_role)
    row = outbox.queue_email(user, kind)
    assert delivery.deliver(row.pk) is True
    [message] = mail.outbox
    assert message.subject == subject
    assert f"/p/acme{link_part}" in message.body
    assert f"/p/acme{link_part}" in message.alternatives[0][0]


def test_sending_a_row_twice_sends_one_email(invited):
    row = OutboxEmail.objects.get(user=invited)
    assert send_outbox_email.delay(row.pk).get() is True
    assert send_outbox_email.delay(row.pk).get() is False
    assert len(mail.outbox) == 1


def test_a_failure_is_kept_on_the_row_and_retried_later(invited, settings):
    settings.OUTBOX_RETRY_BASE_SECONDS = 30
    row = OutboxEmail.objects.get(user=invited)
    with (
        mock.patch(
            "django.core.mail.EmailMultiAlternatives.send",
            side_effect=smtplib.SMTPServerDisconnected("Connection unexpectedly closed"),
        ),
        pytest.raises(delivery.SendFailed) as failure,
    ):
        delivery.deliver(row.pk)

    assert failure.value.retry_in == 30
    row.refresh_from_db()
    assert row.status == "pending"
    assert row.attempts == 1
    assert "Connection unexpectedly closed" in row.last_error
    assert row.next_attempt_at > timezone.now()
    # the token minted for the failed message did not survive the rollback
    assert not LoginToken.objects.filter(user=invited).exists()


def test_backoff_doubles_and_the_row_fails_after_the_last_attempt(invited, settings):
    settings.OUTBOX_MAX_ATTEMPTS = 3
    settings.OUTBOX_RETRY_BASE_SECONDS = 10
    row = OutboxEmail.objects.get(user=invited)
    delays = []
    with mock.patch("django.core.mail.EmailMultiAlternatives.send", side_effect=OSError("refused")):
        for _ in range(3):
            with pytest.raises(delivery.SendFailed) as failure:
                delivery.deliver(row.pk)
            delays.append(failure.value.retry_in)
    assert delays == [10, 20, 40]
    assert failure.value.final
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("failed", 3)


def test_the_sweep_requeues_rows_left_unsent(invited, settings):
    row = OutboxEmail.objects.get(user=invited)
    fresh = outbox.queue_email(
        PortalUserFactory(portal_account=invited.portal_account, role=invited.role),
        EmailKind.LOGIN_LINK,
    )
    long_ago = timezone.now() - settings.OUTBOX_REQUEUE_AFTER - timedelta(seconds=1)
    OutboxEmail.objects.filter(pk=row.pk).update(queued_at=long_ago, next_attempt_at=long_ago)
    queued_at = OutboxEmail.objects.get(pk=fresh.pk).queued_at
    assert requeue_unsent_emails.delay().get() == 1
    row.refresh_from_db()
    fresh.refresh_from_db()
    assert row.status == "sent"
    # Too recent to be handed over again: its own wake-up is still on its way. (The lane's
    # drain that the sweep woke sends it too: it sends every row that is due.)
    assert fresh.queued_at == queued_at


def test_the_sweep_waits_for_the_backoff(invited, settings):
    OutboxEmail.objects.update(
        queued_at=timezone.now() - settings.OUTBOX_REQUEUE_AFTER - timedelta(seconds=1),
        next_attempt_at=timezone.now() + timedelta(minutes=5),
    )
    assert requeue_unsent() == []


def test_a_broker_outage_leaves_the_row_for_the_sweep(
    account, partner_role, technician, django_capture_on_commit_callbacks
):
    contact = ContactFactory(portal_account=account, email="grace@example.com")
    no_broker = mock.patch.object(
        send_due_emails, "apply_async", side_effect=ConnectionError("down")
    )
    with no_broker, django_capture_on_commit_callbacks(execute=True):
        lifecycle.invite(
            account,
            user_type=UserType.PARTNER,
            role=partner_role,
            by=technician,
            contact=contact,
        )
    assert OutboxEmail.objects.get().status == "pending"


# --- One mail server session for consecutive emails ---


class FakeMailServer:
    """What a mail server would see: the sessions opened to it and the messages accepted."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.sessions = []
        self.messages = []

    def drop_sessions(self):
        for session in self.sessions:
            session.alive = False


class FakeSession:
    def __init__(self):
        self.alive = True

    def noop(self):
        if not self.alive:
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        return 250, b"OK"


SERVER = FakeMailServer()


class SessionCountingBackend(BaseEmailBackend):
    """Behaves like Django's SMTP backend as far as sessions go: open() starts one unless one is
    open, and send_messages() closes only a session that it opened itself."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.connection = None

    def open(self):
        if self.connection is not None:
            return False
        self.connection = FakeSession()
        SERVER.sessions.append(self.connection)
        return True

    def close(self):
        self.connection = None

    def send_messages(self, email_messages):
        opened_here = self.open()
        try:
            if not self.connection.alive:
                raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
            SERVER.messages.extend(email_messages)
        finally:
            if opened_here:
                self.close()
        return len(email_messages)


@pytest.fixture
def mail_server(settings):
    SERVER.reset()
    settings.EMAIL_BACKEND = f"{__name__}.SessionCountingBackend"
    delivery.mail_session.close()
    yield SERVER
    delivery.mail_session.close()


@pytest.fixture
def login_links(account, partner_role):
    def queue(count):
        return [
            outbox.queue_email(
                PortalUserFactory(portal_account=account, role=partner_role), EmailKind.LOGIN_LINK
            )
            for _ in range(count)
        ]

    return queue


def test_consecutive_emails_share_one_mail_server_session(mail_server, login_links):
    rows = login_links(5)
    assert [send_outbox_email.delay(row.pk).get() for row in rows] == [True] * 5
    assert len(mail_server.sessions) == 1
    assert [message.to for message in mail_server.messages] == [[row.to_email] for row in rows]


def test_a_broken_session_is_closed_and_the_next_email_opens_a_new_one(
    mail_server, login_links, monkeypatch
):
    # Straight to the send, no NOOP first: the session breaks during the message.
    monkeypatch.setattr(delivery.MailSession, "CHECK_AFTER_IDLE_SECONDS", 3600)
    first, second, third = login_links(3)
    delivery.deliver(first.pk)
    mail_server.drop_sessions()

    with pytest.raises(delivery.SendFailed):
        delivery.deliver(second.pk)
    assert delivery.deliver(third.pk) is True
    assert delivery.deliver(second.pk) is True

    assert len(mail_server.sessions) == 2
    assert OutboxEmail.objects.get(pk=second.pk).attempts == 2
    assert len(mail_server.messages) == 3


def test_a_session_dropped_while_idle_is_replaced_before_the_email_is_sent(
    mail_server, login_links, monkeypatch
):
    monkeypatch.setattr(delivery.MailSession, "CHECK_AFTER_IDLE_SECONDS", 0)
    first, second = login_links(2)
    delivery.deliver(first.pk)
    mail_server.drop_sessions()  # the server's idle timeout

    assert delivery.deliver(second.pk) is True
    row = OutboxEmail.objects.get(pk=second.pk)
    assert (row.attempts, row.last_error) == (1, "")  # not counted as a failed attempt
    assert len(mail_server.sessions) == 2


def test_a_line_break_in_an_older_account_name_does_not_stop_its_emails(account):
    from accounts.models import PortalAccount

    PortalAccount.objects.filter(pk=account.pk).update(name="Acme\r\nBcc: evil@example.com")
    user = PortalUserFactory(portal_account=account, contact=ContactFactory(portal_account=account))
    row = outbox.queue_email(user, EmailKind.LOGIN_LINK)

    assert delivery.deliver(row.pk) is True
    assert mail.outbox[-1].subject == "Your sign-in link for Acme Bcc: evil@example.com"
    assert "bcc" not in {header.lower() for header in mail.outbox[-1].extra_headers}


def test_an_accounts_emails_go_with_it_though_no_database_key_ties_them(account, other_account):
    """The outbox's account has no constraint of its own (an import checked it per row at each
    commit): Django's cascade still removes an account's emails with it, and only its."""
    for owner in (account, other_account):
        OutboxEmail.objects.create(
            portal_account=owner, to_email="someone@example.com", kind=EmailKind.LOGIN_LINK
        )
    account.delete()
    assert list(OutboxEmail.objects.values_list("portal_account_id", flat=True)) == [
        other_account.pk
    ]
