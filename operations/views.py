import ipaddress
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import BACKEND_SESSION_KEY
from django.http import (
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET, require_POST

from accounts import two_factor
from accounts.permissions import CONSOLE_BACKEND, mssp_view
from accounts.sign_in_audit import ip_of
from helpers.client_ip import client_ip
from helpers.row_ids import row_id
from operations import email_retries, figures, health, metrics, retention
from operations.models import Heartbeat


def _no_store(response):
    add_never_cache_headers(response)
    return response


def _has_token(request):
    token = settings.MONITORING_TOKEN
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and secrets.compare_digest(sent, token)


def _is_console_mssp_staff(request):
    """Signed in at the console as MSSP staff, past the second factor (as console_view asks)."""
    user = request.user
    return (
        user.is_authenticated
        and user.is_mssp
        and request.session.get(BACKEND_SESSION_KEY) == CONSOLE_BACKEND
        and two_factor.what_the_session_needs(request) is None
    )


def _ip_allowed(request):
    ip = client_ip(request)
    if not ip or not settings.METRICS_ALLOWED_IPS:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in settings.METRICS_ALLOWED_IPS)


def liveness(request):
    """/health/ for load balancers: the database answers or not. Served by MonitoringMiddleware
    before sessions, host checks and tenants; the answer says nothing else."""
    check = health.database()
    return _no_store(
        JsonResponse(
            {"status": "ok" if check.ok else "unavailable"}, status=200 if check.ok else 503
        )
    )


@require_GET
def readiness(request):
    """/health/ready/: every check. Anybody learns ready or not (200 or 503); MSSP staff and
    holders of MONITORING_TOKEN also learn each check's answer."""
    checks = health.readiness()
    ready = all(check.ok for check in checks)
    body = {"status": "ready" if ready else "not ready"}
    if _has_token(request) or _is_console_mssp_staff(request):
        body["checks"] = {check.name: {"ok": check.ok, "detail": check.detail} for check in checks}
    return _no_store(JsonResponse(body, status=200 if ready else 503))


def metrics_endpoint(request):
    """/metrics for Prometheus: MONITORING_TOKEN as a bearer token, or an address in
    METRICS_ALLOWED_IPS. Served by MonitoringMiddleware, like /health/."""
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD"})
    if not (_has_token(request) or _ip_allowed(request)):
        return HttpResponseForbidden(
            "Send MONITORING_TOKEN as 'Authorization: Bearer <token>', or scrape from an address "
            "in METRICS_ALLOWED_IPS.\n",
            content_type="text/plain",
        )
    body, content_type = metrics.exposition()
    return _no_store(HttpResponse(body, content_type=content_type))


def _described(heartbeat, now):
    max_age = {
        Heartbeat.Kind.WORKER: settings.HEALTH_WORKER_MAX_AGE_SECONDS,
        Heartbeat.Kind.BEAT: settings.HEALTH_BEAT_MAX_AGE_SECONDS,
    }[heartbeat.kind]
    age = figures.age_seconds(heartbeat.seen_at, now)
    if heartbeat.stopped_at:
        state = "stopped"
    elif age > max_age:
        state = "silent"
    else:
        state = "alive"
    return {"row": heartbeat, "ago": health.ago(age), "state": state}


def _import_described(job, now):
    """A running import, and whether its worker stopped reporting progress (stalled)."""
    return {
        "job": job,
        "stalled": job.is_stalled,
        "progress_ago": health.ago(figures.age_seconds(job.heartbeat, now)),
    }


# Beat runs retention daily: a newest run older than this says beat has not run it since.
RETENTION_OVERDUE = timedelta(hours=26)


def _retention_described(run, now):
    if run is None:
        return None
    order = {kind: n for n, kind in enumerate(retention.KINDS)}
    took = None
    if run.finished_at:
        took = health.duration(figures.age_seconds(run.started_at, run.finished_at))
    return {
        "run": run,
        "ago": health.ago(figures.age_seconds(run.started_at, now)),
        "took": took,
        # In retention's order: jsonb (PostgreSQL) keeps a dict's keys in an order of its own.
        "kinds": [
            {"label": retention.LABELS.get(kind, kind), "count": run.counts[kind]}
            for kind in sorted(run.counts, key=lambda kind: (order.get(kind, len(order)), kind))
        ],
        "deleted": sum(count for count in run.counts.values() if count is not None),
        "overdue": now - run.started_at > RETENTION_OVERDUE,
    }


@mssp_view
def system(request):
    now = timezone.now()
    backlog = [
        {"account": account, "count": count, "ago": health.ago(figures.age_seconds(oldest, now))}
        for account, count, oldest in figures.backlog_by_account()
    ]
    context = {
        "checks": health.readiness(),
        "backlog": backlog,
        "backlog_total": figures.outbox_backlog(),
        "count_limit": figures.COUNT_LIMIT,
        "failed": figures.failed_emails(),
        "failed_total": figures.outbox_failed(),
        "imports": [_import_described(job, now) for job in figures.running_imports()],
        "stall_minutes": settings.IMPORT_STALL_MINUTES,
        "retention": _retention_described(figures.last_retention_run(), now),
        "heartbeats": [_described(row, now) for row in Heartbeat.objects.all()],
    }
    return render(request, "operations/system.html", context)


@mssp_view
@require_POST
def retry_email(request):
    email_id = row_id(request.POST.get("email_id", ""))
    if email_id is None:
        return HttpResponseBadRequest("Which email? Send its email_id.")
    try:
        row = email_retries.retry_failed_email(email_id, by=request.user, ip=ip_of(request))
    except email_retries.RetryRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(
            request,
            f"The {row.get_kind_display().lower()} email to {row.to_email} is queued again.",
        )
    return redirect("system")
