"""What the database says about the running system, in queries cheap enough for every scrape of
/metrics and every health check: each reads an index range whose size is the backlog, the
failures or the last few minutes, never every row of the outbox or the audit log. Counts stop
at COUNT_LIMIT, so even a runaway backlog costs a bounded scan."""

from datetime import timedelta

from django.db.models import Count, Min, Sum
from django.db.models.fields.json import KT
from django.utils import timezone

from accounts import sign_in_audit
from accounts.models import AuditEvent, OutboxEmail, PortalAccount
from imports.models import ImportJob
from operations.models import RetentionRun

COUNT_LIMIT = 100_000
# Refused sign-ins are reported for this window; the created_at index reads just its rows.
SIGN_IN_WINDOW = timedelta(minutes=5)

_pending = OutboxEmail.objects.filter(status=OutboxEmail.Status.PENDING)
_failed = OutboxEmail.objects.filter(status=OutboxEmail.Status.FAILED)


def bounded_count(queryset):
    # A sliced queryset counts in a subquery with a LIMIT: the scan stops there. Unordered, or
    # the model's ordering would sort the rows first.
    return queryset.order_by()[:COUNT_LIMIT].count()


def outbox_backlog():
    """Emails waiting to be sent (pending: queued, retrying or waiting for their turn)."""
    return bounded_count(_pending.all())


def outbox_failed():
    """Emails given up on after OUTBOX_MAX_ATTEMPTS (they wait for a person to retry them)."""
    return bounded_count(_failed.all())


def oldest_pending_created_at():
    """When the oldest email still waiting was queued (None: nothing waits). Its creation, not
    its queued_at: the sweep re-queues a stuck row and refreshes that."""
    return _pending.aggregate(oldest=Min("created_at"))["oldest"]


def age_seconds(moment, now=None):
    if moment is None:
        return 0.0
    return max(((now or timezone.now()) - moment).total_seconds(), 0.0)


def backlog_by_account(limit=50):
    """Portal accounts with emails waiting, the longest wait first: [(account, count, oldest)].
    Emails of no account (none are queued so today) are left out. Read off the oldest
    COUNT_LIMIT waiting emails (a range of the status index), as the counts are: behind a
    backlog past that, an account's count is of those only, and an account whose emails are
    all newer is not listed (the System page says so). A 1,000,000-row import queues 850,000
    invitations, which every view of the page read before."""
    waiting = _pending.filter(portal_account__isnull=False)
    # The creation time of the COUNT_LIMIT-th oldest: the range up to it is what is read.
    edge = (
        _pending.order_by("created_at")
        .values_list("created_at", flat=True)[COUNT_LIMIT - 1 : COUNT_LIMIT]
        .first()
    )
    if edge is not None:
        waiting = waiting.filter(created_at__lte=edge)
    rows = list(
        waiting.values("portal_account")
        .annotate(count=Count("pk"), oldest=Min("created_at"))
        .order_by("oldest")[:limit]
    )
    accounts = PortalAccount.objects.in_bulk([row["portal_account"] for row in rows])
    return [
        (accounts[row["portal_account"]], row["count"], row["oldest"])
        for row in rows
        if row["portal_account"] in accounts
    ]


def failed_emails(limit=50):
    return list(
        _failed.select_related("portal_account", "user").order_by("-created_at", "-pk")[:limit]
    )


def running_imports():
    return list(
        ImportJob.objects.filter(status=ImportJob.Status.RUNNING)
        .select_related("portal_account", "started_by")
        .order_by("started_at", "pk")
    )


def last_retention_run():
    """The newest retention run that deleted (None: none yet), along the started_at index."""
    return RetentionRun.objects.order_by("-started_at", "-pk").first()


def running_import_count():
    return ImportJob.objects.filter(status=ImportJob.Status.RUNNING).count()


def import_rows():
    """Rows applied and failed by every import there is, per target. One row per import: the
    table stays small, and the sums are the counters Prometheus takes rates of."""
    totals = ImportJob.objects.values("target").annotate(
        processed=Sum("processed"), failed=Sum("failed")
    )
    return {
        row["target"]: {
            "applied": (row["processed"] or 0) - (row["failed"] or 0),
            "failed": row["failed"] or 0,
        }
        for row in totals
    }


def refused_sign_ins(now=None):
    """Failed sign-ins and lockouts of the last SIGN_IN_WINDOW, per door:
    {(action, door): count}."""
    since = (now or timezone.now()) - SIGN_IN_WINDOW
    rows = (
        AuditEvent.objects.filter(
            created_at__gte=since,
            action__in=(sign_in_audit.SIGN_IN_FAILED, sign_in_audit.LOCKED_OUT),
        )
        .annotate(door=KT("after__door"))
        .values("action", "door")
        .annotate(count=Count("pk"))
        .order_by()
    )
    return {(row["action"], row["door"] or "unknown"): row["count"] for row in rows}
