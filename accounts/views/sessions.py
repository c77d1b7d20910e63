"""Your sign-ins and sessions: where a console person is signed in now (and ends any of those
sessions but this one, or all the others), and their recent sign-in history. Ending asks
first: a <dialog> over HTMX, a page of its own without JavaScript."""

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods
from django_htmx.http import retarget

from accounts import sign_in_audit, signed_in_sessions
from accounts.models import AuditEvent
from accounts.permissions import console_view
from accounts.views.audit import action_label

HISTORY_SIZE = 50
TEMPLATE = "accounts/sessions.html"
CONFIRM_TEMPLATE = "accounts/session_end_confirm.html"


def _this_row_id(request):
    return request.session.get(signed_in_sessions.ROW_KEY)


def _described(row, this_row_id):
    row.device = signed_in_sessions.describe_device(row.user_agent)
    row.is_this_browser = row.pk == this_row_id
    return row


def _open_rows(request):
    this_row_id = _this_row_id(request)
    rows = [_described(row, this_row_id) for row in signed_in_sessions.open_sessions(request.user)]
    # This browser first: the one the person recognises.
    return sorted(rows, key=lambda row: not row.is_this_browser)


def _history(person):
    events = AuditEvent.objects.filter(
        subject_user=person, action__in=sign_in_audit.SIGN_IN_ACTIONS
    ).order_by("-created_at", "-id")[:HISTORY_SIZE]
    for event in events:
        event.action_label = action_label(event.action)
        event.how = sign_in_audit.describe(event)
        event.device = signed_in_sessions.describe_device(event.user_agent)
    return events


@console_view
def my_sessions(request):
    rows = _open_rows(request)
    return render(
        request,
        TEMPLATE,
        {
            "rows": rows,
            "others": sum(1 for row in rows if not row.is_this_browser),
            "history": _history(request.user),
            "history_size": HISTORY_SIZE,
            "console_idle_minutes": settings.CONSOLE_IDLE_TIMEOUT_MINUTES,
            "portal_idle_minutes": settings.PORTAL_IDLE_TIMEOUT_MINUTES,
        },
    )


def _confirm(request, context, status=200):
    if request.htmx:
        response = render(request, f"{CONFIRM_TEMPLATE}#dialog", context, status=status)
        return retarget(response, "#dialog-slot")
    return render(request, CONFIRM_TEMPLATE, context, status=status)


@console_view
@require_http_methods(["GET", "POST"])
def end_session(request, session_id):
    # Only the person's own rows: anybody else's id is a 404.
    row = get_object_or_404(request.user.signed_in_sessions, pk=session_id)
    row = _described(row, _this_row_id(request))
    if row.is_this_browser:
        return HttpResponseBadRequest("That is the session you are using now: sign out instead.")
    if request.method != "POST":
        return _confirm(request, {"row": row})
    signed_in_sessions.end_one(request.user, row, ip=sign_in_audit.ip_of(request))
    messages.success(request, f"Signed out {row.device} ({row.ip_address or 'unknown address'}).")
    return redirect("my-sessions")


@console_view
@require_http_methods(["GET", "POST"])
def end_other_sessions(request):
    others = (
        signed_in_sessions.open_sessions(request.user).exclude(pk=_this_row_id(request)).count()
    )
    if request.method != "POST":
        return _confirm(request, {"others": others, "all_others": True})
    ended = signed_in_sessions.end_others(
        request.user, _this_row_id(request), ip=sign_in_audit.ip_of(request)
    )
    if ended:
        messages.success(request, f"Signed out {ended} other session{'s' if ended != 1 else ''}.")
    else:
        messages.info(request, "There were no other sessions to end.")
    return redirect("my-sessions")
