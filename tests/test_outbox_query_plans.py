"""The outbox's queries read index ranges, not the table (PostgreSQL), with the indexes it has
since migration 0027 dropped three that no query needed: each runs under EXPLAIN ANALYZE over
24,000 rows (sent mostly, as in production, a paced backlog, a few failed and cancelled, old and
new), must not scan the table, and reads about as many rows as it returns. The plans are
printed (pytest -s) for the record."""

import json
import random
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from accounts.models import EmailKind, OutboxEmail, User, UserKind, UserState, UserType
from accounts.models.outbox import BULK, LANES, URGENT
from mail import batches
from operations import figures
from tests.factories import PortalAccountFactory

pytestmark = pytest.mark.postgres

SENT, BACKLOG, STALE, DONE_OLD = 20_000, 1_000, 40, 3_000
URGENT_LATER = 100
SLACK_ROWS = 50
Status = OutboxEmail.Status


@pytest.fixture
def outbox(db):
    now = timezone.now()
    account = PortalAccountFactory()
    users = User.objects.bulk_create(
        User(
            kind=UserKind.PORTAL,
            portal_account=account,
            user_type=UserType.EMPLOYEE,
            state=UserState.ENABLED,
            name=f"User {n}",
            email=f"u{n}@plans.example",
            password="!unusable",
        )
        for n in range(2_000)
    )
    rng = random.Random(27)

    def row(kind, status, created, due=None, queued=None):
        user = rng.choice(users)
        return OutboxEmail(
            portal_account=account,
            user=user,
            to_email=user.email,
            kind=kind,
            status=status,
            queued_at=queued or created,
            next_attempt_at=due,
            sent_at=created if status == Status.SENT else None,
        )

    kinds = [EmailKind.INVITATION, EmailKind.LOGIN_LINK, EmailKind.LOGIN_CODE]
    rows = [
        row(rng.choice(kinds), Status.SENT, now - timedelta(days=rng.uniform(0, 80)))
        for _ in range(SENT)
    ]
    # Sent, cancelled and failed long ago: what retention deletes.
    rows += [
        row(rng.choice(kinds), rng.choice([Status.SENT, Status.CANCELLED, Status.FAILED]), now)
        for _ in range(DONE_OLD)
    ]
    # A paced import's invitations, due over the next hour, and a few urgent rows due later.
    rows += [
        row(EmailKind.INVITATION, Status.PENDING, now, due=now + timedelta(seconds=n / 2))
        for n in range(BACKLOG)
    ]
    rows += [
        row(EmailKind.LOGIN_LINK, Status.PENDING, now, due=now + timedelta(minutes=2))
        for _ in range(URGENT_LATER)
    ]
    # Left unsent: a worker died holding them, in both lanes, some without a due time.
    stale_at = now - timedelta(hours=2)
    rows += [
        row(rng.choice(kinds), Status.PENDING, stale_at, due=None if n % 4 else stale_at)
        for n in range(STALE)
    ]
    created = OutboxEmail.objects.bulk_create(rows, batch_size=5_000)
    # created_at is auto_now_add: the old rows are made old afterwards.
    old = [r.pk for r in created[SENT : SENT + DONE_OLD]]
    OutboxEmail.objects.filter(pk__in=old).update(created_at=now - timedelta(days=200))
    OutboxEmail.objects.filter(pk__in=[r.pk for r in created[: SENT // 2]]).update(
        created_at=now - timedelta(days=40)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE accounts_outboxemail")
    return now


def _explain(queryset):
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
        cursor.execute("EXPLAIN " + sql, params)
        print("\n" + "\n".join(line for (line,) in cursor.fetchall()))
    return (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]


def _nodes(plan):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _check(queryset, indexes):
    """The query reads one of `indexes`, never the table, and about the rows it returns."""
    plan = _explain(queryset)
    scans = [n for n in _nodes(plan) if n.get("Relation Name") == "accounts_outboxemail"]
    assert all("Seq Scan" not in n["Node Type"] for n in _nodes(plan)), plan
    used = {n["Index Name"] for n in _nodes(plan) if "Index Name" in n}
    assert used, plan
    assert used <= set(indexes), used
    returned = plan["Actual Rows"]
    read = sum(
        (n["Actual Rows"] + n.get("Rows Removed by Filter", 0)) * n["Actual Loops"] for n in scans
    )
    assert returned >= 1, returned
    assert read <= returned + SLACK_ROWS, (read, returned)
    return returned


def test_the_migration_left_no_index_of_status_alone_nor_by_queue_time(outbox):
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'accounts_outboxemail'")
        definitions = [definition for (definition,) in cursor.fetchall()]
    assert not [d for d in definitions if d.endswith("(status)") or "queued_at" in d]
    assert not [d for d in definitions if "varchar_pattern_ops" in d]
    # pk, user, queued_by, (status, created_at), two lanes' partial indexes (not the account's:
    # nothing looks rows up by it, and every index is written again when a row is marked sent)
    assert len(definitions) == 6, definitions


def test_the_sweep_reads_the_stale_rows_of_each_lane(outbox):
    from django.conf import settings

    cutoff = outbox - settings.OUTBOX_REQUEUE_AFTER
    total = 0
    for lane, index in ((URGENT, "outbox_urgent_due"), (BULK, "outbox_bulk_due")):
        for due in (Q(next_attempt_at__lt=cutoff), Q(next_attempt_at__isnull=True)):
            stale = OutboxEmail.objects.filter(
                LANES[lane], due, status=Status.PENDING, queued_at__lt=cutoff
            ).order_by()
            total += _check(stale.values_list("pk", flat=True), [index])
    assert total == STALE


def test_the_claim_reads_the_due_rows_of_its_lane(outbox):
    later = outbox + timedelta(seconds=120)
    due = batches.due(BULK, later).order_by("next_attempt_at", "id").values_list("pk")[:100]
    assert _check(due, ["outbox_bulk_due"]) == 100


def test_the_health_figures_read_the_pending_and_failed_ranges(outbox):
    backlog = BACKLOG + URGENT_LATER + STALE
    pending = figures._pending.order_by().values_list("pk", flat=True)
    assert _check(pending, ["outbox_by_status_created"]) == backlog
    failed = figures._failed.order_by().values_list("pk", flat=True)
    assert _check(failed, ["outbox_by_status_created"])
    oldest = figures._pending.order_by("created_at").values_list("created_at")[:1]
    assert _check(oldest, ["outbox_by_status_created"]) == 1


def test_retention_reads_the_old_rows_of_one_status(outbox):
    from operations.retention import DONE_EMAIL

    cutoff = outbox - timedelta(days=90)
    total = 0
    for status in DONE_EMAIL:
        old = OutboxEmail.objects.filter(status=status, created_at__lt=cutoff).order_by(
            "created_at"
        )
        total += _check(old.values_list("pk", flat=True), ["outbox_by_status_created"])
    assert total == DONE_OLD
