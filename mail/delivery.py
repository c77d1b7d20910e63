"""Sending one outbox row, at the portal account's pace (mail/send_pace.py), over a mail server
session that the worker keeps open; a failure stays on the row and is retried with exponential
backoff.

At least once, and nearly always once: the row lock and status check keep two workers from
sending the same row, but the mail server takes the message before the row is marked sent in
the same transaction, so a worker killed between the two (or a lost COMMIT) leaves the row
pending and the sweep sends it again. The copy is the same email (mail/emails.py): the same
live link, the same Message-ID."""

import contextlib
import functools
import logging
import os
import re
import smtplib
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.core.mail import get_connection
from django.db import transaction
from django.utils import timezone

from accounts.models import OutboxEmail
from accounts.models.outbox import lane_of
from mail import bounces, send_pace
from mail.emails import LINKS, build_message

log = logging.getLogger(__name__)


class SendFailed(Exception):
    def __init__(self, row, error):
        super().__init__(str(error))
        self.row = row
        self.retry_in = retry_delay(row.attempts)
        self.final = row.status == OutboxEmail.Status.FAILED


def retry_delay(attempts):
    return settings.OUTBOX_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0)


class SendDeferred(Exception):
    """The portal account's pace has no room yet. Not a failure: send again in `countdown`
    seconds, with `slot` (the turn reserved, in milliseconds since the epoch)."""

    def __init__(self, row_id, turn):
        super().__init__(f"Outbox email {row_id} waits for its turn at {turn.starts:%H:%M:%S.%f}")
        self.slot = turn.slot
        self.countdown = turn.wait


def deliver(row_id, *, pace=False, slot=None):
    """Send one row. Returns True when this call sent it, False when there was nothing to do
    (already sent, cancelled, or being sent by another worker). Raises SendFailed when sending
    failed. With `pace` (the worker's task), the row waits for its portal account's turn:
    SendDeferred when there is no room yet (`slot`: a turn that an earlier call reserved)."""
    turn = None
    try:
        with transaction.atomic():
            row = (
                OutboxEmail.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("user", "portal_account")
                .filter(pk=row_id, status=OutboxEmail.Status.PENDING)
                .first()
            )
            if row is None or row.user is None:
                return False
            if _superseded(row):
                # Sending it now would kill the newer email's link (the newest link of a purpose
                # is the live one).
                row.status = OutboxEmail.Status.CANCELLED
                row.last_error = "Replaced by a newer email."
                row.save(update_fields=["status", "last_error"])
                return False
            # After the row checks, so that a row already sent or cancelled takes no place.
            if pace and row.portal_account_id is not None:
                turn = send_pace.take_turn(row.portal_account_id, slot, lane_of(row.kind))
            if turn is None or turn.now:
                _send(row)
                return True
            # Only the time, not an attempt: it keeps the sweep away until the turn has come.
            row.next_attempt_at = turn.starts
            row.save(update_fields=["next_attempt_at"])
    except Exception as error:
        row = _record_failure(row_id, error)
        raise SendFailed(row, error) from error
    raise SendDeferred(row_id, turn)


def _superseded(row):
    """A newer email of the same link purpose went out while this one waited (a re-send after
    a crash, or a retry after an outage)."""
    purpose = LINKS[row.kind][0]
    if purpose is None:
        return False
    kinds = [kind for kind, (other, _) in LINKS.items() if other == purpose]
    return OutboxEmail.objects.filter(
        user_id=row.user_id, kind__in=kinds, pk__gt=row.pk, status=OutboxEmail.Status.SENT
    ).exists()


def _send(row):
    message = build_message(row)
    mail_session.send(message)
    row.status = OutboxEmail.Status.SENT
    row.sent_at = timezone.now()
    row.attempts += 1
    row.last_error = ""
    row.subject = message.subject
    row.save(update_fields=["status", "sent_at", "attempts", "last_error", "subject"])


class MailSession(threading.local):
    """One open session with the mail server per worker process (and thread), reused for the
    messages it sends one after another: a burst of emails costs one TCP connection, EHLO,
    STARTTLS and login, not one per message. Any backend works; those without connections
    (locmem, the demo's mail folder) just have nothing to keep.

    A session that failed is closed and the next message opens a new one. A session that sat
    idle is checked with NOOP first, since servers drop idle sessions and the message would
    otherwise fail (and count as a failed attempt) on a connection that was already gone."""

    # Postfix's own client stops reusing a session after 300 s (smtp_connection_reuse_time_limit).
    MAX_AGE_SECONDS = 300
    CHECK_AFTER_IDLE_SECONDS = 1

    def __init__(self):
        self.backend = None
        self.config = None
        self.pid = None
        self.opened_at = self.used_at = 0.0
        self.pending = None

    def send(self, message):
        try:
            message.connection = self._open()
            message.send()
        except Exception:
            # Whatever state the session is in, it is not reused.
            self.close()
            raise
        self.used_at = time.monotonic()

    def takes_bytes(self):
        """Whether the session is Django's SMTP backend, which send_bytes talks to directly (not
        a subclass of it: it may do more to a message, sign it for instance)."""
        return settings.EMAIL_BACKEND == SMTP_BACKEND

    def start_message(self, sender, recipients, size):
        """MAIL, RCPT and DATA for a message written already (mail.composer), in one write
        where the server offers PIPELINING (RFC 2920); returns once the server waits for the
        message (354). Raises what smtplib's sendmail raises, the session closed."""
        try:
            _envelope(self._open().connection, sender, recipients, size)
        except Exception:
            self.close()
            raise

    def finish_message(self, data):
        """The message of start_message, and the server's answer (250: it has it)."""
        self.send_message(data)
        self.message_reply()

    def send_message(self, data, then=None):
        """finish_message's write alone. With `then`, the (sender, recipients, size) of the next
        message, and a server that pipelines: that message's MAIL, RCPT and DATA go in the same
        write (RFC 2920 lets a message's content and end lead a group), and the server reads
        them while the client waits for nothing. Returns whether they went; their replies come
        after this message's (message_reply), and envelope_reply reads them."""
        smtp = self.backend.connection
        try:
            envelope = None
            if then is not None and smtp.has_extn("pipelining"):
                envelope = _envelope_commands(smtp, *then)
            smtp.send(_message_bytes(data) + (_command_bytes(envelope) if envelope else b""))
        except Exception:
            self.close()
            raise
        self.pending = (then, envelope)
        return envelope is not None

    def message_reply(self):
        """The server's answer to send_message's message (250: it has it). Raises
        SMTPDataError otherwise, the session closed."""
        try:
            _message_reply(self.backend.connection, reset=self.pending[1] is None)
        except Exception:
            self.close()
            raise
        self.used_at = time.monotonic()

    def envelope_reply(self):
        """The replies to the envelope that went with send_message's message: returns once the
        server waits for that message (354), or raises as start_message does."""
        (sender, recipients, _), commands = self.pending
        self.pending = None
        smtp = self.backend.connection
        try:
            replies = [smtp.getreply() for _ in commands]
            _check_envelope(smtp, sender, recipients, commands, replies)
        except Exception:
            self.close()
            raise

    def abandon_message(self):
        """After start_message, for a message that must not go after all: the connection is
        dropped without the end of the message, so the server discards it (RFC 5321 4.1.1.4);
        the next message opens a new session."""
        with contextlib.suppress(OSError):
            self.backend.connection.close()
        self.close()

    def close(self):
        backend, self.backend = self.backend, None
        if backend is None:
            return
        try:
            backend.close()
        except Exception:
            # QUIT on a broken session may fail too; the session is dropped either way.
            log.debug("Closing the mail session failed", exc_info=True)

    def _open(self):
        config = _mail_config()
        now = time.monotonic()
        if self.backend is not None and self.pid != os.getpid():
            # Inherited through fork: the socket is the parent's, never ours to QUIT.
            self.backend = None
        elif self.backend is not None and (
            self.config != config
            or now - self.opened_at > self.MAX_AGE_SECONDS
            or (now - self.used_at > self.CHECK_AFTER_IDLE_SECONDS and not self._alive())
        ):
            self.close()
        if self.backend is None:
            self.backend = get_connection(fail_silently=False)
            self.config, self.pid, self.opened_at = config, os.getpid(), now
        # Also after a close by the backend itself; a no-op when its session is open.
        self.backend.open()
        return self.backend

    def _alive(self):
        smtp = getattr(self.backend, "connection", None)
        if smtp is None or not hasattr(smtp, "noop"):
            return True
        try:
            return smtp.noop()[0] == 250
        except Exception:
            return False


SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
_PERIOD_AT_LINE_START = re.compile(rb"(?m)^\.")


def _envelope(smtp, sender, recipients, size):
    """smtplib.SMTP.sendmail up to the message: MAIL, RCPT and DATA, in one write when the
    server pipelines (one round trip instead of one per command). The same errors."""
    smtp.ehlo_or_helo_if_needed()
    commands = _envelope_commands(smtp, sender, recipients, size)
    if smtp.has_extn("pipelining"):
        smtp.send(_command_bytes(commands))
        replies = [smtp.getreply() for _ in commands]
    else:
        replies = []
        for command in commands:
            smtp.putcmd(command)
            replies.append(smtp.getreply())
            if replies[-1][0] not in (250, 251):
                break  # as sendmail: no RCPT after a refused MAIL, no DATA without recipients
    _check_envelope(smtp, sender, recipients, commands, replies)


def _envelope_commands(smtp, sender, recipients, size):
    options = f" size={size}" if smtp.has_extn("size") else ""
    commands = [f"mail FROM:{_quoted(sender)}{options}"]
    commands += [f"rcpt TO:{_quoted(recipient)}" for recipient in recipients]
    commands.append("data")
    return commands


# A plain address, as smtplib.quoteaddr gives it back between <> (its parsing cost the batch
# sender more than the rest of the envelope).
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")


def _quoted(address):
    if _PLAIN_ADDRESS.fullmatch(address):
        return f"<{address}>"
    return _parsed_and_quoted(address)


@functools.lru_cache(maxsize=256)
def _parsed_and_quoted(address):
    # An address with a name (an account's sender, "Acme Portal <noreply@...>"): the same few
    # for every message of a batch, parsed once (it was 7 % of the batch sender's CPU).
    return smtplib.quoteaddr(address)


def _command_bytes(commands):
    return "".join(f"{command}\r\n" for command in commands).encode("ascii")


def _check_envelope(smtp, sender, recipients, commands, replies):
    (code, reply), *rcpt_replies = replies
    refused = {
        recipient: answer
        for recipient, answer in zip(recipients, rcpt_replies, strict=False)
        if answer[0] not in (250, 251)
    }
    data_code, data_reply = replies[-1] if len(replies) == len(commands) else (503, b"")
    if data_code == 354 and (code != 250 or len(refused) == len(recipients)):
        # A server that took DATA after refusing the sender or every recipient: whatever is
        # written now would be the message. A dropped connection discards it.
        smtp.close()
    if code != 250:
        if code == 421:
            smtp.close()
        elif data_code != 354:
            _reset(smtp)
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    if len(refused) == len(recipients):
        if data_code != 354:
            _reset(smtp)
        raise smtplib.SMTPRecipientsRefused(refused)
    if data_code != 354:
        _reset(smtp)
        raise smtplib.SMTPDataError(data_code, data_reply)


def _message_bytes(data):
    """smtplib.SMTP.data after its 354: the message (a line that starts with a period gets
    another) and its end."""
    message = _PERIOD_AT_LINE_START.sub(b"..", data)
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    return message + b".\r\n"


def _message_reply(smtp, reset=True):
    """The server's answer to a message (250). `reset`: after a refusal, RSET, as sendmail
    does (not with the next envelope on its way: the session is dropped instead)."""
    code, reply = smtp.getreply()
    if code != 250:
        if code == 421 or not reset:
            smtp.close()
        else:
            _reset(smtp)
        raise smtplib.SMTPDataError(code, reply)


def _reset(smtp):
    # As sendmail does: a session gone already does not hide the error that is raised.
    with contextlib.suppress(smtplib.SMTPServerDisconnected):
        smtp.rset()


def _mail_config():
    # A changed setting (override_settings in tests, mostly) must not send through a session
    # opened with the old one.
    return tuple(
        getattr(settings, name, None)
        for name in (
            "EMAIL_BACKEND",
            "EMAIL_HOST",
            "EMAIL_PORT",
            "EMAIL_HOST_USER",
            "EMAIL_HOST_PASSWORD",
            "EMAIL_USE_TLS",
            "EMAIL_USE_SSL",
            "EMAIL_TIMEOUT",
        )
    )


mail_session = MailSession()


def _record_failure(row_id, error):
    with transaction.atomic():
        row = OutboxEmail.objects.select_for_update().get(pk=row_id)
        row.attempts += 1
        row.last_error = f"{type(error).__name__}: {error}"[:2000]
        row.next_attempt_at = timezone.now() + timedelta(seconds=retry_delay(row.attempts))
        bounce = bounces.permanent_refusal(error)
        if row.attempts >= settings.OUTBOX_MAX_ATTEMPTS or bounce:
            row.status = OutboxEmail.Status.FAILED
        row.save(update_fields=["attempts", "last_error", "next_attempt_at", "status"])
        if bounce:
            bounces.record_bounce(row, bounce)
    log.warning("Outbox email %s failed (attempt %s): %s", row_id, row.attempts, row.last_error)
    return row
