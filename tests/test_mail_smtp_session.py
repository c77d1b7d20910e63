"""The batch sender over a real SMTP session (mail.composer's bytes, mail.delivery's envelope and
message, pipelined where the server offers PIPELINING): what arrives, a row cancelled after its
envelope went, a refused recipient."""

import email
import email.policy
import smtplib

import psycopg
import pytest
from aiosmtpd.controller import Controller
from django.core import mail
from django.db import connection
from django.utils import timezone

from accounts import tokens
from accounts.models import EmailKind, OutboxEmail, TokenPurpose
from mail import batches, delivery, outbox, tasks
from mail.models import CustomEmail
from tests.factories import PortalUserFactory
from tests.test_outbox_worker import free_port

REFUSED = "nobody@acme.example"


class Sink:
    """Keeps what it is sent; refuses REFUSED at RCPT as a mail server does an unknown mailbox."""

    def __init__(self):
        self.sessions = 0
        self.messages = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address == REFUSED:
            return "550 5.1.1 <nobody@acme.example>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((envelope.rcpt_tos[0], message))
        return "250 Message accepted for delivery"


class PipeliningSink(Sink):
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.sessions += 1
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]


class PlainSink(Sink):
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.sessions += 1
        session.host_name = hostname
        return responses


@pytest.fixture(params=[PipeliningSink, PlainSink], ids=["pipelining", "no pipelining"])
def sink(request, settings):
    handler = request.param()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = delivery.SMTP_BACKEND
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    delivery.mail_session.close()
    yield handler
    delivery.mail_session.close()
    controller.stop()


def _links(account, count):
    return [
        outbox.queue_email(PortalUserFactory(portal_account=account), EmailKind.LOGIN_LINK)
        for _ in range(count)
    ]


def test_a_batch_arrives_whole_over_one_session_with_working_links(sink, account):
    CustomEmail.objects.create(
        portal_account=account,
        kind=EmailKind.LOGIN_LINK,
        subject="Come in, {name}",
        body="Hi {name}!\n\n.{link}\n\n..and it expires in {expires}.",
    )
    rows = _links(account, 4)

    assert batches.send_batch("urgent", pace=False) == 4

    assert sink.sessions == 1
    assert [to for to, _ in sink.messages] == [row.to_email for row in rows]
    for row, (_, message) in zip(rows, sink.messages, strict=True):
        assert message["X-Outbox-Id"] == str(row.pk)
        assert message["Subject"] == f"Come in, {row.user.name}"
        text = message.get_body(("plain",)).get_content()
        # A line that starts with a period arrives as written (SMTP doubles it on the way).
        link = text.split("\n.", 1)[1].split()[0]
        assert "\n..and it expires in" in text
        secret = link.rstrip("/").rsplit("/", 1)[1]
        assert tokens.peek(secret, TokenPurpose.LOGIN_EMAIL, account).user_id == row.user_id
    assert set(OutboxEmail.objects.values_list("status", "attempts")) == {("sent", 1)}
    assert not mail.outbox  # not through Django's backend object


def test_a_row_cancelled_before_its_mark_does_not_arrive(sink, account, monkeypatch):
    first, second, third = _links(account, 3)
    send_mark = batches._Marks.send

    def cancelled_just_before(marks, row, subject):
        # As another transaction that commits while the mark is on its way.
        if row.pk == second.pk:
            outbox.cancel_pending(second.user, reason="Disabled.")
        send_mark(marks, row, subject)

    monkeypatch.setattr(batches._Marks, "send", cancelled_just_before)
    batches.send_batch("urgent", pace=False)

    assert [to for to, _ in sink.messages] == [first.to_email, third.to_email]
    assert OutboxEmail.objects.get(pk=second.pk).status == "cancelled"
    # The server was waiting for the second message (its envelope went meanwhile): the session
    # was dropped without it, and the third went over a new one.
    assert sink.sessions == 2


def test_a_refused_recipient_bounces_and_the_batch_goes_on(sink, account):
    first = _links(account, 1)[0]
    refused = outbox.queue_email(
        PortalUserFactory(portal_account=account, email=REFUSED), EmailKind.LOGIN_LINK
    )
    last = _links(account, 1)[0]

    batches.send_batch("urgent", pace=False)

    assert [to for to, _ in sink.messages] == [first.to_email, last.to_email]
    row = OutboxEmail.objects.get(pk=refused.pk)
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error.startswith("SMTPRecipientsRefused")
    refused.user.refresh_from_db()
    assert refused.user.email_undeliverable


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_raw_marks_of_a_worker_over_postgres(sink, account, monkeypatch):
    # No transaction of the caller's: the marks are raw COMMITs, as in a worker's task.
    # Committed, the rows would wake an eager task that sends them at once.
    monkeypatch.setattr(tasks, "wake", lambda lane, at=None: True)
    first = _links(account, 3)
    refused = outbox.queue_email(
        PortalUserFactory(portal_account=account, email=REFUSED), EmailKind.LOGIN_LINK
    )
    last = _links(account, 3)
    cancelled = last[1]
    send_mark = batches._PostgresMarks.send

    def cancelled_just_before(marks, row, subject):
        if row.pk == cancelled.pk:
            # Another transaction's, in effect: nothing of the worker's is left open.
            marks.settle()
            outbox.cancel_pending(cancelled.user, reason="Disabled.")
        return send_mark(marks, row, subject)

    monkeypatch.setattr(batches._PostgresMarks, "send", cancelled_just_before)

    assert batches.send_batch("urgent", pace=False) == 7

    expected = [row.to_email for row in first] + [last[0].to_email, last[2].to_email]
    assert [to for to, _ in sink.messages] == expected
    statuses = dict(OutboxEmail.objects.values_list("pk", "status"))
    assert statuses.pop(refused.pk) == "failed"
    assert statuses.pop(cancelled.pk) == "cancelled"
    assert set(statuses.values()) == {"sent"}
    assert set(OutboxEmail.objects.filter(status="sent").values_list("attempts", flat=True)) == {1}
    # Every mark answered and committed: the worker's connection is free for its next task.
    assert connection.connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_a_mail_server_lost_mid_stream_keeps_the_error_and_hands_the_rest_back(
    sink, account, monkeypatch
):
    rows = _links(account, 5)
    reply = delivery.MailSession.message_reply
    replies = []

    def lost_at_the_third(session):
        replies.append(1)
        if len(replies) == 3:
            session.close()
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        return reply(session)

    monkeypatch.setattr(delivery.MailSession, "message_reply", lost_at_the_third)
    batches.send_batch("urgent", pace=False)

    assert [to for to, _ in sink.messages] == [row.to_email for row in rows[:3]]
    sent, failed, rest = rows[:2], rows[2], rows[3:]
    assert set(
        OutboxEmail.objects.filter(pk__in=[r.pk for r in sent]).values_list("status", flat=True)
    ) == {"sent"}
    failed = OutboxEmail.objects.get(pk=failed.pk)
    # The server may have it (in doubt, on the side of a second copy): pending, its error kept.
    assert (failed.status, failed.attempts) == ("pending", 1)
    assert failed.last_error.startswith("SMTPServerDisconnected")
    # The rest were not tried (the fourth's envelope went with the third and was lost with
    # the session): no attempt, due with the failed row's retry.
    rest = [OutboxEmail.objects.get(pk=row.pk) for row in rest]
    assert [(row.status, row.attempts, row.last_error) for row in rest] == [("pending", 0, "")] * 2
    assert {row.next_attempt_at for row in rest} == {failed.next_attempt_at}


def test_a_bulk_batch_hands_back_its_rest_for_urgent_mail(sink, account, monkeypatch):
    invitations = [
        outbox.queue_email(PortalUserFactory(portal_account=account), EmailKind.INVITATION)
        for _ in range(4)
    ]
    monkeypatch.setattr(batches, "URGENT_CHECK_SECONDS", 0)
    send = delivery.MailSession.send_message
    codes = []

    def a_code_meanwhile(session, data, then=None):
        if not codes:
            codes.append(
                outbox.queue_email(PortalUserFactory(portal_account=account), EmailKind.LOGIN_CODE)
            )
        return send(session, data, then)

    monkeypatch.setattr(delivery.MailSession, "send_message", a_code_meanwhile)

    batches.send_batch("bulk", pace=False)

    # The code appears as the first invitation leaves, with the second's envelope: the second
    # (its envelope answered, its mark held) still goes; the rest are due again at once,
    # untried, for the drain to send after the code.
    assert [to for to, _ in sink.messages] == [row.to_email for row in invitations[:2]]
    rest = OutboxEmail.objects.filter(pk__in=[row.pk for row in invitations[2:]])
    assert {(row.status, row.attempts) for row in rest} == {("pending", 0)}
    assert all(row.next_attempt_at <= timezone.now() for row in rest)
