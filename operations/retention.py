"""How long data is kept, applied by beat (operations.tasks.apply_retention) and by
`manage.py apply_retention [--dry-run]`: one function per kind of data, each returning how many
rows it deleted (or, dry, would delete).

Every deletion goes in batches of BATCH rows by primary key, each its own short transaction, and
stops when done or when its time budget is spent (the next run goes on): a backlog of millions
never holds one long transaction or its locks. Each batch is found through an index (EXPLAIN in
tests/test_retention.py's PostgreSQL notes). Import files have their own task
(imports.tasks.delete_expired_import_files); throttle counters expire in the cache."""

import logging
import time
from datetime import timedelta
from importlib import import_module

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import AuditEvent, LoginToken, OutboxEmail, SignedInSession
from operations.models import RetentionRun

logger = logging.getLogger(__name__)

BATCH = 5000
# Session keys are strings: the planner reads a list of thousands of them with a scan of the
# whole table rather than the index, but not a list of a few hundred.
KEYS_PER_STATEMENT = 500
# Seconds each kind may spend deleting per run; a daily run with more left resumes next day.
TIME_BUDGET_SECONDS = 120
# A row is written during the sign-in request, its Django session only when the response goes
# out, and a row follows a new session key at its next "seen" (at most a minute): a row seen
# lately without a session may be in the middle of that, so it is left alone.
ORPHAN_GRACE = timedelta(hours=1)


def _delete_in_batches(queryset, field, *, dry_run, budget):
    """Delete the rows of `queryset` oldest first by `field` (an indexed time), BATCH at a
    time: each statement is a range of that index up to the BATCH-th oldest row's value (a few
    more on a tie), whatever the planner thinks of a long list of ids. The filter is applied
    again at delete time, so a row that changed in between (a failed email retried) is kept."""
    queryset = queryset.order_by()
    if dry_run:
        return queryset.count()
    deadline = time.monotonic() + budget
    label = queryset.model._meta.label
    deleted = 0
    while time.monotonic() < deadline:
        boundary = queryset.order_by(field).values_list(field, flat=True)[BATCH - 1 : BATCH]
        boundary = next(iter(boundary), None)
        batch = queryset if boundary is None else queryset.filter(**{f"{field}__lte": boundary})
        with transaction.atomic():
            _, per_model = batch.delete()
        deleted += per_model.get(label, 0)
        if boundary is None:
            break
    return deleted


def login_tokens(*, dry_run=False, now=None, budget=TIME_BUDGET_SECONDS):
    """Tokens that expired more than LOGIN_TOKEN_RETENTION_DAYS ago: dead whether used, revoked
    or never opened. A used or revoked token goes by its expiry too, which is at most one token
    lifetime (7 days for an invitation) after its use: one index, on expires_at."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.LOGIN_TOKEN_RETENTION_DAYS)
    return _delete_in_batches(
        LoginToken.objects.filter(expires_at__lt=cutoff),
        "expires_at",
        dry_run=dry_run,
        budget=budget,
    )


DONE_EMAIL = (OutboxEmail.Status.SENT, OutboxEmail.Status.CANCELLED, OutboxEmail.Status.FAILED)


def outbox_emails(*, dry_run=False, now=None, budget=TIME_BUDGET_SECONDS):
    """Sent, cancelled and failed emails written more than OUTBOX_RETENTION_DAYS ago (their
    address, subject and context are people's data). A pending email is never deleted, however
    old: it is still owed. A token minted for a deleted email keeps working (its link is in the
    email already); it only loses the pointer back (SET NULL)."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.OUTBOX_RETENTION_DAYS)
    # One status at a time: each is one range of the (status, created_at) index.
    return sum(
        _delete_in_batches(
            OutboxEmail.objects.filter(status=status, created_at__lt=cutoff),
            "created_at",
            dry_run=dry_run,
            budget=budget / len(DONE_EMAIL),
        )
        for status in DONE_EMAIL
    )


def audit_events(*, dry_run=False, now=None, budget=TIME_BUDGET_SECONDS):
    """Audit events older than AUDIT_RETENTION_DAYS; none while it is unset (kept for ever)."""
    days = settings.AUDIT_RETENTION_DAYS
    if days is None:
        return 0
    now = now or timezone.now()
    cutoff = now - timedelta(days=days)
    return _delete_in_batches(
        AuditEvent.objects.filter(created_at__lt=cutoff),
        "created_at",
        dry_run=dry_run,
        budget=budget,
    )


def _session_model():
    """Django's Session model when sessions are kept in the database (db and cached_db), else
    None: the cache and signed cookies expire by themselves."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    get_model_class = getattr(store, "get_model_class", None)
    return get_model_class() if get_model_class else None


def sessions(*, dry_run=False, now=None, budget=TIME_BUDGET_SECONDS):
    """Expired Django sessions (SessionStore.clear_expired(), in batches: its single DELETE
    would lock a big backlog at once) and the SignedInSession rows describing them."""
    session_model = _session_model()
    if session_model is None:
        if not dry_run:
            import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()
        return 0
    now = now or timezone.now()
    expired = session_model.objects.filter(expire_date__lt=now).order_by()
    if dry_run:
        return expired.count()
    deadline = time.monotonic() + budget
    deleted = 0
    while time.monotonic() < deadline:
        boundary = expired.order_by("expire_date").values_list("expire_date", flat=True)
        boundary = next(iter(boundary[BATCH - 1 : BATCH]), None)
        batch = expired if boundary is None else expired.filter(expire_date__lte=boundary)
        keys = list(batch.values_list("pk", flat=True))
        with transaction.atomic():
            # The rows first: a row without its session is what signed_in_sessions reads as
            # "ended", never the other way round. Short lists of keys, each a few probes of
            # the unique index on session_key.
            for start in range(0, len(keys), KEYS_PER_STATEMENT):
                chunk = keys[start : start + KEYS_PER_STATEMENT]
                SignedInSession.objects.filter(session_key__in=chunk).delete()
            deleted += batch.delete()[0]
        if boundary is None:
            break
    return deleted


def signed_in_sessions(*, dry_run=False, now=None, budget=TIME_BUDGET_SECONDS):
    """SignedInSession rows whose Django session is gone some other way (deleted before this
    task existed, or by hand). Walked by primary key, BATCH at a time, each batch checked
    against the session table's primary key: the table holds one row per open browser."""
    session_model = _session_model()
    if session_model is None:
        return 0
    now = now or timezone.now()
    deadline = time.monotonic() + budget
    found = 0
    after = 0
    while time.monotonic() < deadline:
        rows = list(
            SignedInSession.objects.filter(pk__gt=after)
            .order_by("pk")
            .values_list("pk", "session_key", "last_seen_at")[:BATCH]
        )
        if not rows:
            break
        after = rows[-1][0]
        live = set(
            key
            for start in range(0, len(rows), KEYS_PER_STATEMENT)
            for key in session_model.objects.filter(
                pk__in=[key for _, key, _ in rows[start : start + KEYS_PER_STATEMENT]]
            ).values_list("pk", flat=True)
        )
        orphans = [pk for pk, key, seen in rows if key not in live and seen < now - ORPHAN_GRACE]
        if orphans and not dry_run:
            found += SignedInSession.objects.filter(
                pk__in=orphans, last_seen_at__lt=now - ORPHAN_GRACE
            ).delete()[0]
        else:
            found += len(orphans)
    return found


KINDS = {
    "login_tokens": login_tokens,
    "outbox_emails": outbox_emails,
    "audit_events": audit_events,
    "sessions": sessions,
    "signed_in_sessions": signed_in_sessions,
}

# What each kind is called where people read the counts (the System page).
LABELS = {
    "login_tokens": "login tokens",
    "outbox_emails": "emails",
    "audit_events": "audit events",
    "sessions": "expired sessions",
    "signed_in_sessions": "rows of sessions gone otherwise",
}


def apply(*, dry_run=False, source=RetentionRun.Source.COMMAND):
    """Every kind in turn; {kind: rows deleted (or that would be)}. A kind that fails is logged
    and counted as None, and the others still run. A run that deletes is kept as a
    RetentionRun, written before it starts, so that one whose process dies mid-run shows as
    unfinished on the System page instead of not at all."""
    run = None
    if not dry_run:
        run = RetentionRun.objects.create(source=source, started_at=timezone.now())
    counts = {}
    for kind, delete in KINDS.items():
        try:
            counts[kind] = delete(dry_run=dry_run)
        except Exception:
            logger.exception("Retention of %s failed", kind)
            counts[kind] = None
    if run is not None:
        run.finished_at = timezone.now()
        run.counts = counts
        run.save(update_fields=["finished_at", "counts"])
    return counts
