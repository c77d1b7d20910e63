"""Sending the outbox in batches: a worker claims up to OUTBOX_BATCH_SIZE due rows of a lane,
mints their tokens, and sends them one after another over one mail server session.

Claim. One short transaction takes the lane's due rows, oldest due first, with
`SELECT ... FOR UPDATE SKIP LOCKED` (two workers never claim the same row), asks the portal
account's pace for each row's turn (mail/send_pace.py: a row whose turn is later gets that time
as its due time, and keeps its reservation), moves the due time of the rest OUTBOX_CLAIM_SECONDS
ahead (the claim: no other worker takes them meanwhile, and a worker that dies leaves them to
be taken again once it has passed), and mints their tokens in bulk (accounts.tokens
.issue_for_emails: the same secrets as one email at a time, so a row sent again carries the
same link). It commits before anything is sent, without waiting for the disk. While a full
batch is sent, the next one is claimed in a thread (ClaimAhead): the claim took a quarter of a
worker's time, the mail server idle meanwhile.

Send. Each message then has a transaction of its own: the row is marked sent (which locks it,
and finds it still pending: cancelled since the claim, it is skipped), the mail server takes the
message, and the mark commits. Never twice by two workers: the second one's mark waits for the
lock and then finds the row sent. Where the mail server pipelines, a message goes in one write
with the next message's envelope, one round trip a message (_Stream); a message still leaves
only once the previous row's mark has committed. A worker killed mid-batch leaves the rows sent
before it marked, the rows after it untouched and claimed until the claim runs out, and at most
the message in flight in doubt, on the side of a second copy: the mail server may have taken
it before the mark committed, and it is sent again (the same email: the same link, the same
Message-ID). The marks commit without waiting for the disk (synchronous_commit off on
PostgreSQL): a worker's death loses none of them; a crash of the database server itself may
lose the last fraction of a second of them, and those emails go out a second time.

Urgent first: a batch of the bulk lane looks for due urgent rows every URGENT_CHECK_SECONDS of
sending (a slow mail server makes a batch long), and hands the rest of its rows back, due at
once, when it finds one: the drain (mail/tasks.py) then sends the urgent lane first.

A failure is kept on its row (the retry backoff, as for one email at a time); a failure of the
mail server rather than of the message hands the rest of the batch back, due with the failed
row's retry."""

import contextlib
import logging
import select
import smtplib
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.dispatch import Signal
from django.utils import timezone

from accounts import tokens
from accounts.models import LoginToken, OutboxEmail
from accounts.models.outbox import LANES, URGENT
from helpers.bulk_sql import any_of
from mail import send_pace
from mail.composer import Composer
from mail.delivery import _record_failure, mail_session
from mail.emails import LINKS

log = logging.getLogger(__name__)

# Sent once a batch's rows are settled, with outcome "sent" or "deferred" and `kinds`
# {kind: count}: the batch writes with UPDATE, which sends no post_save (operations.metric_hooks).
outbox_counted = Signal()

URGENT_CHECK_SECONDS = 0.1

_PENDING, _SENT = OutboxEmail.Status.PENDING, OutboxEmail.Status.SENT
_CANCELLED = OutboxEmail.Status.CANCELLED


def due(lane, now=None):
    return OutboxEmail.objects.filter(
        LANES[lane], status=_PENDING, next_attempt_at__lte=now or timezone.now()
    )


def next_due(lane):
    """When the lane's next pending row falls due (None: none is pending)."""
    return (
        OutboxEmail.objects.filter(LANES[lane], status=_PENDING, next_attempt_at__isnull=False)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )


def send_batch(lane, *, pace, size=None, claim=None):
    """Claim up to `size` due rows of the lane (or take `claim`'s: claim_batch, ClaimAhead) and
    send those whose turn it is. Returns how many rows were claimed (0: none was due)."""
    ready, minted, claimed = claim or claim_batch(lane, pace=pace, size=size)
    if ready:
        _send(ready, minted, yield_to_urgent=lane != URGENT)
    return claimed


def claim_batch(lane, *, pace, size=None):
    """(rows to send now, their tokens' secrets, how many rows were claimed)."""
    return _claim(lane, size or settings.OUTBOX_BATCH_SIZE, pace)


class ClaimAhead:
    """The lane's next batch claimed while this one is sent: in a thread of the worker's, over a
    database connection of that thread's (kept from one claim to the next, closed with the
    drain: `finished`). The claim of a batch of 100 took a quarter of a worker's time, the mail
    server idle meanwhile; it now waits on PostgreSQL while the mail server reads this batch.

    What the sender promises stays: a claim is a claim whenever it is made (the rows due later
    by OUTBOX_CLAIM_SECONDS, their tokens minted, nothing sent), and each message still leaves
    only once the previous row's mark has committed, so the message in doubt after a SIGKILL is
    still at most one; what a killed worker leaves claimed is the rest of its batch and the
    batch claimed ahead, taken again once their claims run out. The urgent lane still goes
    first: a bulk batch claimed ahead waits, claimed, while the drain sends the urgent rows.
    Only on PostgreSQL outside a transaction (a worker's task): a test's transaction is not
    seen from another connection, nor is SQLite's database in memory."""

    _executor = None

    @staticmethod
    def possible():
        return (
            settings.OUTBOX_CLAIM_AHEAD
            and connection.vendor == "postgresql"
            and not connection.in_atomic_block
        )

    def __init__(self, lane, *, pace, size=None):
        self.lane = lane
        self.future = self._pool().submit(_claim_in_thread, lane, size, pace)

    def result(self):
        """claim_batch's result (or its error), once the claim has committed."""
        return self.future.result()

    def hand_back(self):
        """The rows claimed ahead due again at once, for whoever drains the lane next."""
        ready, _minted, _claimed = self.result()
        _hand_back(ready, timezone.now())

    @classmethod
    def finished(cls):
        """The drain is over: the thread's connection closed (a worker keeps one of its own)."""
        if cls._executor is not None:
            cls._executor.submit(_close_connection).result()

    @classmethod
    def _pool(cls):
        if cls._executor is None:
            cls._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-claim")
        return cls._executor


def _close_connection():
    connection.close()  # this thread's (a bound method taken elsewhere would be another's)


def _claim_in_thread(lane, size, pace):
    # The thread's connection, as a request's: dropped when broken or too old.
    connection.close_if_unusable_or_obsolete()
    return claim_batch(lane, pace=pace, size=size)


def _claim(lane, size, pace):
    now = timezone.now()
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            # The claim's COMMIT need not wait for the disk either: lost with the database
            # server (not with a worker), the rows are pending and due as before, and their
            # tokens are minted again, the same ones; every mark written after it is lost as
            # well (the log is written in order), so none of its emails counts as sent.
            _set_local_async_commit()
        rows = list(
            due(lane, now)
            .order_by("next_attempt_at", "id")
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("user", "portal_account")[:size]
        )
        claimed = len(rows)
        if not rows:
            return [], {}, 0
        rows = _drop_unsendable(rows)
        ready, deferred = [], []
        turns = _turns(rows, lane) if pace else {}
        for row in rows:
            turn = turns.get(row.pk)
            if turn is None or turn.now:
                ready.append(row)
            else:
                # Not a failure: no attempt, no error; the row is due at its turn.
                row.next_attempt_at = row.paced_turn_at = turn.starts
                deferred.append(row)
        claim_ends = now + timedelta(seconds=settings.OUTBOX_CLAIM_SECONDS)
        # One JSON parameter, not a parameter per id that the client binds one at a time.
        OutboxEmail.objects.filter(pk__in=any_of(row.pk for row in ready)).update(
            next_attempt_at=claim_ends, paced_turn_at=None
        )
        if deferred:
            OutboxEmail.objects.bulk_update(deferred, ["next_attempt_at", "paced_turn_at"])
        minted = tokens.issue_for_emails(
            [(row, LINKS[row.kind][0]) for row in ready if LINKS[row.kind][0] is not None]
        )
    _count("deferred", deferred)
    return ready, minted, claimed


def _set_local_async_commit():
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO off")


def _turns(rows, lane):
    """{row pk: its turn in its portal account's pace}. A row with a turn reserved asks with it;
    the others of an account ask together (mail.send_pace.take_turns: one cache call when the
    account's current window has room for them all, where one a row cost the claim a round trip
    to Redis per email)."""
    turns, fresh = {}, {}
    for row in rows:
        if row.portal_account_id is None:
            continue
        if row.paced_turn_at:
            slot = int(row.paced_turn_at.timestamp() * 1000)
            turns[row.pk] = send_pace.take_turn(row.portal_account_id, slot, lane)
        else:
            fresh.setdefault(row.portal_account_id, []).append(row)
    for account_id, group in fresh.items():
        account_turns = send_pace.take_turns(account_id, len(group), lane)
        turns.update(zip((row.pk for row in group), account_turns, strict=True))
    return turns


def _drop_unsendable(rows):
    """Cancel what must not go out, returning the rest: a row whose user is gone, an older email
    of a link purpose whose newer one was sent (sending it would kill the newer link: the newest
    link of a purpose is the live one), or is in this batch."""
    newest = {}
    for row in rows:
        purpose = LINKS[row.kind][0]
        if purpose is not None and row.user_id is not None:
            key = (row.user_id, purpose)
            newest[key] = max(newest.get(key, 0), row.pk)
    if newest:
        kinds = [kind for kind, (purpose, _) in LINKS.items() if purpose is not None]
        sent = _sent_since(
            sorted({user_id for user_id, _ in newest}), kinds, min(row.pk for row in rows)
        )
        for user_id, kind, pk in sent:
            key = (user_id, LINKS[kind][0])
            if key in newest:
                newest[key] = max(newest[key], pk)
    keep, replaced, orphaned = [], [], []
    for row in rows:
        purpose = LINKS[row.kind][0]
        if row.user_id is None:
            orphaned.append(row.pk)
        elif purpose is not None and newest[(row.user_id, purpose)] != row.pk:
            replaced.append(row.pk)
        else:
            keep.append(row)
    for pks, reason in ((replaced, "Replaced by a newer email."), (orphaned, "The user is gone.")):
        if pks:
            OutboxEmail.objects.filter(pk__in=pks).update(status=_CANCELLED, last_error=reason)
    return keep


# Each user's emails through the user index, whatever the statistics say. The same filter in
# one query was planned from the statistics, which lag behind a burst of marks or a new
# database: with few rows counted as sent, PostgreSQL read every sent row through (status,
# created_at), or every row newer than the batch's oldest through the primary key (20 ms and
# more a claim at a few thousand rows, growing with the table). The subquery's OFFSET 0 keeps
# the other conditions out of it (they are not pushed into a subquery with an OFFSET): it is
# a lookup of the user's emails, a few over the retention period.
_SENT_SINCE = """
    SELECT mine.user_id, mine.kind, mine.id FROM unnest(%s::bigint[]) AS claimed(user_id)
    CROSS JOIN LATERAL (
        SELECT user_id, kind, id, status FROM accounts_outboxemail
        WHERE user_id = claimed.user_id OFFSET 0
    ) AS mine
    WHERE mine.status = %s AND mine.kind = ANY(%s) AND mine.id > %s
"""


def _sent_since(user_ids, kinds, after):
    """(user id, kind, pk) of the users' emails of these kinds sent, with a pk above `after`."""
    if connection.vendor != "postgresql":
        return OutboxEmail.objects.filter(
            user_id__in=user_ids, kind__in=kinds, status=_SENT, pk__gt=after
        ).values_list("user_id", "kind", "pk")
    with connection.cursor() as cursor:
        cursor.execute(_SENT_SINCE, [user_ids, str(_SENT), [str(k) for k in kinds], after])
        return cursor.fetchall()


def _send(rows, minted, *, yield_to_urgent):
    sent = []
    # Raw COMMITs only where no transaction of the caller's is open (a worker's task is not in
    # one; a test is).
    fast = connection.vendor == "postgresql" and not connection.in_atomic_block
    as_bytes = mail_session.takes_bytes()
    marks = _PostgresMarks() if fast else _Marks()
    # The batch's emails from a rendering per account and kind; as bytes for an SMTP session.
    composer = Composer()
    try:
        if as_bytes:
            _Stream(rows, minted, marks, composer, sent, yield_to_urgent).run()
            return
        checked = time.monotonic()
        for index, row in enumerate(rows):
            try:
                if _send_one(row, minted.get(row.pk), marks, composer):
                    sent.append(row)
            except Exception as error:
                failed = _fail(row, error, marks)
                if _the_mail_server_failed(error):
                    log.warning("The mail server failed: the rest of the batch waits as well")
                    _hand_back(rows[index + 1 :], failed.next_attempt_at)
                    break
            if yield_to_urgent and time.monotonic() - checked > URGENT_CHECK_SECONDS:
                if due(URGENT).exists():
                    _hand_back(rows[index + 1 :], timezone.now())
                    break
                checked = time.monotonic()
    finally:
        marks.close()
        _count("sent", sent)


def _fail(row, error, marks):
    """Keep the error on the row; returns the row as failed."""
    # A mark kept and not yet committed (the error is the next row's own) commits first: the
    # failure has a transaction of the ORM's.
    marks.settle()
    failed = _record_failure(row.pk, error)
    # As if the send's transaction had minted it: no live token for an email that did not
    # leave.
    LoginToken.objects.filter(outbox_email_id=row.pk, used_at__isnull=True).delete()
    return failed


# What became of the waiting message and the envelope offered to go with it (_Stream._finish).
_WITH_ENVELOPE, _ALONE, _FAILED, _SERVER_FAILED = "with envelope", "alone", "failed", "down"


class _Stream:
    """The batch over an SMTP session, one round trip to the mail server a message where it
    pipelines (RFC 2920 lets a message's content and end lead a group): a message goes in one
    write with the next message's envelope (MAIL, RCPT, DATA), and the worker writes the
    message after next (mail.composer) while the server reads them. Per message:

    1. the waiting message (the server answered its DATA with 354; its row's mark was found
       pending and is held) goes, with the next message's envelope;
    2. the message after next is written while the server reads;
    3. the server's 250 for the waiting message: its mark is kept (the COMMIT goes with the
       next row's mark);
    4. the next row's mark goes to the database while the replies to its envelope are read,
       and is answered (with that COMMIT) before its message leaves. Found pending, the row's
       message is the waiting one; not (cancelled since the claim, or sent by a worker whose
       claim this one outlived), the session is dropped before its content, so the server
       discards it, and the next message opens a new session.

    A message leaves only once the previous one's mark has committed: the message in doubt is
    still at most one. Without PIPELINING, for a session's first message and after a failure,
    an envelope goes alone and its replies are waited for, as smtplib's sendmail does."""

    def __init__(self, rows, minted, marks, composer, sent, yield_to_urgent):
        self.rows, self.minted, self.marks = rows, minted, marks
        self.composer, self.sent, self.yield_to_urgent = composer, sent, yield_to_urgent
        self.ahead = {}  # index -> (sender, recipients, data, subject), or its error
        self.waiting = None  # (row, data)

    def run(self):
        rows = self.rows
        checked = time.monotonic()
        index = 0
        while index < len(rows):
            if self.yield_to_urgent and time.monotonic() - checked > URGENT_CHECK_SECONDS:
                self.marks.settle()
                if due(URGENT).exists():
                    if self._finish(index) != _SERVER_FAILED:
                        self.marks.settle()
                        _hand_back(rows[index:], timezone.now())
                    return
                checked = time.monotonic()
            row = rows[index]
            written = self._written(index)
            envelope_went = False
            if self.waiting is not None:
                outcome = self._finish(index, None if isinstance(written, Exception) else written)
                if outcome == _SERVER_FAILED:
                    return  # the rest of the batch handed back
                if outcome == _FAILED:
                    # The envelope, if it went, was dropped with the session: this row again.
                    self.ahead[index] = written
                    continue
                envelope_went = outcome == _WITH_ENVELOPE
            try:
                if isinstance(written, Exception):
                    raise written
                self._start(index, row, written, envelope_went)
            except Exception as error:
                failed = _fail(row, error, self.marks)
                if _the_mail_server_failed(error):
                    log.warning("The mail server failed: the rest of the batch waits as well")
                    _hand_back(rows[index + 1 :], failed.next_attempt_at)
                    return
            index += 1
        self._finish(index)

    def _written(self, index):
        if index in self.ahead:
            return self.ahead.pop(index)
        row = self.rows[index]
        try:
            return self.composer.mime(row, self.minted.get(row.pk))
        except Exception as error:
            return error  # the row's failure, once its turn comes

    def _write_ahead(self, index):
        if index + 1 < len(self.rows) and index + 1 not in self.ahead:
            self.marks.free()
            self.ahead[index + 1] = self._written(index + 1)

    def _start(self, index, row, written, envelope_went):
        """The row's mark, and its envelope's replies (the envelope itself first, where it did
        not go with the waiting message): the row's message waits, or the row is left."""
        sender, recipients, data, subject = written
        marks = self.marks
        mark = marks.send(row, subject)
        try:
            if envelope_went:
                mail_session.envelope_reply()
            else:
                mail_session.start_message(sender, recipients, len(data))
        except Exception:
            if marks.marked(mark):
                marks.undo(mark)
                raise
            marks.keep(mark)
            return  # not this worker's row (and the session is closed)
        try:
            if not envelope_went:
                self._write_ahead(index)
            found = marks.marked(mark)
        except Exception:
            # The server waits for a message that will not come now: whatever went next would
            # be taken as its content.
            mail_session.abandon_message()
            raise
        if not found:
            mail_session.abandon_message()
            marks.keep(mark)
            return
        self.waiting = (row, data, mark)

    def _finish(self, index, written=None):
        """Send the waiting message, with the envelope of `written` (the row at `index`) where
        the server pipelines. On a failure of the mail server, the rows from `index` on are
        handed back."""
        if self.waiting is None:
            return _ALONE
        row, data, mark = self.waiting
        self.waiting = None
        envelope = None if written is None else (written[0], written[1], len(written[2]))
        try:
            went = mail_session.send_message(data, then=envelope)
            if went:
                self._write_ahead(index)
            mail_session.message_reply()
        except Exception as error:
            self.marks.undo(mark)
            failed = _fail(row, error, self.marks)
            if _the_mail_server_failed(error):
                log.warning("The mail server failed: the rest of the batch waits as well")
                _hand_back(self.rows[index:], failed.next_attempt_at)
                return _SERVER_FAILED
            return _FAILED
        self.marks.keep(mark)
        self.sent.append(row)
        return _WITH_ENVELOPE if went else _ALONE


def _send_one(row, minted, marks, composer):
    return _send_email(row, composer.email(row, minted), marks)


def _send_email(row, message, marks):
    """The same for a backend that takes an EmailMessage (not an SMTP session)."""
    marks.send(row, message.subject)
    if not marks.marked():
        marks.keep()
        return False
    try:
        mail_session.send(message)
    except Exception:
        marks.undo()
        raise
    marks.keep()
    return True


class _Marks:
    """A row's mark as sent: its own transaction, begun before the message goes to the mail
    server (the UPDATE locks the row and finds it still pending) and committed after. `send`
    starts it, `marked` says whether the row was found pending (then `keep` commits it, `undo`
    rolls it back). One mark at a time: the other methods take the one `send` returned."""

    def send(self, row, subject):
        self.block = transaction.atomic()
        self.block.__enter__()
        self.found = OutboxEmail.objects.filter(pk=row.pk, status=_PENDING).update(
            status=_SENT,
            sent_at=timezone.now(),
            attempts=F("attempts") + 1,
            last_error="",
            subject=subject,
        )
        return self

    def marked(self, mark=None):
        return self.found

    def keep(self, mark=None):
        self.block.__exit__(None, None, None)

    def undo(self, mark=None):
        error = RuntimeError("not sent")
        self.block.__exit__(RuntimeError, error, None)

    def free(self):
        pass

    def settle(self):
        pass

    def close(self):
        pass


class _PostgresMarks(_Marks):
    """The same transactions in one round trip a message, where each is four with the ORM
    (BEGIN, UPDATE, COMMIT): a mark's COMMIT travels with the next row's BEGIN and UPDATE, in
    one simple query, sent without waiting (the mail server reads the next envelope meanwhile)
    and answered before the next message leaves. A row's mark therefore commits once the next
    message is written (or the batch ends): the message in doubt is still at most one. The
    marks do not wait for the disk (synchronous_commit off, for these transactions only)."""

    MARK = (
        "BEGIN; SET LOCAL synchronous_commit TO off; UPDATE accounts_outboxemail SET "
        "status = 'sent', sent_at = %s, attempts = attempts + 1, last_error = '', subject = %s "
        "WHERE id = %s AND status = 'pending'"
    )

    def __init__(self):
        connection.ensure_connection()
        self.link = _Link(connection.connection)
        self.kept = False

    def send(self, row, subject):
        query = ("COMMIT; " if self.kept else "") + self.MARK
        self.kept = False
        self.link.send(self.link.cursor.mogrify(query, [timezone.now(), subject, row.pk]))
        return self.link

    def marked(self, mark=None):
        return int(self.link.results()[-1].command_tuples or 0)

    def keep(self, mark=None):
        self.kept = True

    def undo(self, mark=None):
        self.link.drain()
        self.link.cursor.execute("ROLLBACK")

    def free(self):
        """The answer on its way read (kept for `marked`): the worker's connection is free
        for the ORM (the composer may read the database)."""
        self.link.drain()

    def settle(self):
        """The same, and a kept mark committed now (before a transaction of the ORM's)."""
        self.link.drain()
        if self.kept:
            self.link.cursor.execute("COMMIT")
            self.kept = False

    def close(self):
        with contextlib.suppress(psycopg.Error):
            self.link.drain()
        if connection.connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            self.link.cursor.execute("COMMIT" if self.kept else "ROLLBACK")
        self.kept = False
        self.link.cursor.close()


class _Link:
    """A connection of the marks: a query sent without waiting, its answer read later."""

    def __init__(self, pg):
        self.connection = pg
        self.cursor = psycopg.ClientCursor(pg)
        self.pgconn = pg.pgconn
        self.encoding = pg.info.encoding
        self.poll = select.poll()
        self.poll.register(self.pgconn.socket, select.POLLIN)
        self.busy = False
        self.answer = None

    def send(self, sql):
        self.answer = None
        self.pgconn.send_query(sql.encode(self.encoding) if isinstance(sql, str) else sql)
        self.busy = True

    def results(self):
        """The answer to the last query sent (read once, then kept)."""
        if not self.busy:
            return self.answer
        self.busy = False
        results = []
        while True:
            while self.pgconn.is_busy():
                self.poll.poll()
                self.pgconn.consume_input()
            result = self.pgconn.get_result()
            if result is None:
                break
            results.append(result)
        for result in results:
            if result.status == psycopg.pq.ExecStatus.FATAL_ERROR:
                self.cursor.execute("ROLLBACK")
                raise psycopg.errors.error_from_result(result, encoding=self.encoding)
        self.answer = results
        return results

    def drain(self):
        if self.busy:
            self.results()


def _the_mail_server_failed(error):
    # A refused recipient or message is that message's problem; the next one may go. Any other
    # error of the connection (smtplib's errors are OSErrors) would fail the rest as well.
    if isinstance(error, smtplib.SMTPRecipientsRefused | smtplib.SMTPDataError):
        return False
    return isinstance(error, OSError)


def _hand_back(rows, due_at):
    """Unclaim rows not tried, due at `due_at`. Their tokens stay: a row taken again mints the
    same ones."""
    if rows:
        OutboxEmail.objects.filter(pk__in=[row.pk for row in rows], status=_PENDING).update(
            next_attempt_at=due_at
        )


def _count(outcome, rows):
    if rows:
        outbox_counted.send(
            sender=OutboxEmail, outcome=outcome, kinds=Counter(str(row.kind) for row in rows)
        )
