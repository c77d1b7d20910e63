"""The outbox: every email is a row written with the change that caused it, handed to Celery
only once that change has committed, and sent at most once, at the portal account's pace
(mail/send_pace.py), over a mail server session that the worker keeps open."""

import logging
import os
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.core.mail import get_connection
from django.db import transaction
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from accounts.models import EmailKind, OutboxEmail
from mail import send_pace
from mail.emails import build_message

log = logging.getLogger(__name__)

# A newer email of the same family makes a pending older one pointless (its link would be dead).
_FAMILIES = {
    EmailKind.INVITATION: [EmailKind.INVITATION, EmailKind.REINVITATION],
    EmailKind.REINVITATION: [EmailKind.INVITATION, EmailKind.REINVITATION],
}


def queue_email(user, kind, **context):
    """Write an outbox row for the user; Celery gets it when the surrounding transaction commits."""
    OutboxEmail.objects.filter(
        user=user, status=OutboxEmail.Status.PENDING, kind__in=_FAMILIES.get(kind, [kind])
    ).update(status=OutboxEmail.Status.CANCELLED, last_error="Replaced by a newer email.")
    row = OutboxEmail.objects.create(
        portal_account=user.portal_account,
        user=user,
        to_email=user.email,
        kind=kind,
        context=context,
        queued_at=timezone.now(),
    )
    transaction.on_commit(lambda: hand_to_celery(row.pk))
    return row


def cancel_pending(user, *, reason):
    return OutboxEmail.objects.filter(user=user, status=OutboxEmail.Status.PENDING).update(
        status=OutboxEmail.Status.CANCELLED, last_error=reason
    )


def hand_to_celery(row_id):
    from mail.tasks import send_outbox_email

    try:
        send_outbox_email.delay(row_id)
    except Exception:  # broker down: the row stays pending and the sweep re-queues it
        log.exception("Could not queue outbox email %s; the sweep will retry it", row_id)


def hand_many_to_celery(row_ids):
    """Hand many rows to Celery with one message (a bulk invite, the CSV import): a worker then
    gives each row its own task (`hand_out_emails`), paced like any other. Publishing costs about
    half a millisecond a message with Redis, so a 10,000-row import handing its rows one by one
    spent 5 s on it before the next batch could start. Broker down: as `hand_to_celery`, the
    rows stay pending and the sweep re-queues them."""
    row_ids = list(row_ids)
    if len(row_ids) <= 1:
        for row_id in row_ids:
            hand_to_celery(row_id)
        return
    from mail.tasks import hand_out_emails

    try:
        hand_out_emails.delay(row_ids)
    except Exception:
        log.exception("Could not queue %s outbox emails; the sweep will retry them", len(row_ids))


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
            # After the row checks, so that a row already sent or cancelled takes no place.
            if pace and row.portal_account_id is not None:
                turn = send_pace.take_turn(row.portal_account_id, slot)
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

    def send(self, message):
        try:
            message.connection = self._open()
            message.send()
        except Exception:
            # Whatever state the session is in, it is not reused.
            self.close()
            raise
        self.used_at = time.monotonic()

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
        if row.attempts >= settings.OUTBOX_MAX_ATTEMPTS:
            row.status = OutboxEmail.Status.FAILED
        row.save(update_fields=["attempts", "last_error", "next_attempt_at", "status"])
    log.warning("Outbox email %s failed (attempt %s): %s", row_id, row.attempts, row.last_error)
    return row


def requeue_unsent():
    """Hand Celery again every pending row that has waited too long since it was queued or
    since its next attempt (a retry after a failure, its turn in the pace) was due: the broker
    was down, or a worker died holding its task. Returns the ids."""
    now = timezone.now()
    # Counting from the due time, not only from the queue time, leaves a row of a long pace
    # backlog, or one whose retry is just due, to the task that is about to run it.
    cutoff = now - settings.OUTBOX_REQUEUE_AFTER
    due = Greatest("queued_at", Coalesce("next_attempt_at", "queued_at"))
    stale = OutboxEmail.objects.alias(due=due).filter(
        # The first condition follows from the second; it lets the (status, queued_at) index
        # do the work.
        status=OutboxEmail.Status.PENDING,
        queued_at__lt=cutoff,
        due__lt=cutoff,
    )
    ids = list(stale.values_list("pk", flat=True)[:5000])
    OutboxEmail.objects.filter(pk__in=ids).update(queued_at=now)
    for row_id in ids:
        hand_to_celery(row_id)
    return ids
