"""A portal user's sign-in links: every login token issued to them (invitations, password
resets, magic links, login emails, one-time codes) with its status, revoking a live one, and
creating a magic link that a console person hands over themselves.

A new magic link's secret exists only in the response to the POST that created it: never in a
URL, the session, a message or a log, and that response is not cached."""

from django.contrib import messages
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import retarget

from accounts import audit, lifecycle, magic_links, scoping
from accounts.errors import LifecycleError
from accounts.models import LoginToken, TokenPurpose, UserState
from accounts.permissions import check_may_act_on, console_view, step_up, step_up_draft
from accounts.portal_sections import SECTIONS
from helpers.client_ip import client_ip

TEMPLATE = "accounts/user_links.html"
DIALOG_SLOT = "dialog-slot"


def _target_user(request, slug, user_id):
    account = scoping.get_portal_account(request.user, slug)
    target = scoping.get_portal_user(request.user, account, user_id)
    check_may_act_on(request.user, target)
    return account, target


def _status(token, now):
    """used / revoked / expired / live."""
    if token.used_at:
        return "used"
    if token.revoked_at:
        return "revoked"
    if token.expires_at <= now:
        return "expired"
    return "live"


def _opens(token):
    """Where a sign-in link lands; invitations and resets land on their own form."""
    if token.purpose in (TokenPurpose.MAGIC_LINK, TokenPurpose.LOGIN_EMAIL):
        return SECTIONS.get(token.target, "Home")
    return ""


def _context(request, account, target, **extra):
    now = timezone.now()
    issued = target.login_tokens.select_related("created_by").order_by("-created_at", "-pk")
    return {
        "account": account,
        "section": "users",
        "target": target,
        "rows": [(token, _status(token, now), _opens(token)) for token in issued],
        "sections": SECTIONS,
        "can_issue": target.state == UserState.ENABLED and not target.contact_deleted,
        "in_dialog": request.htmx and request.htmx.target == DIALOG_SLOT,
        **extra,
    }


def _render(request, context, status=200):
    """The full page; for HTMX the panel (or, asked into the dialog slot, a dialog)."""
    if not request.htmx:
        return render(request, TEMPLATE, context, status=status)
    if context["in_dialog"]:
        response = render(request, f"{TEMPLATE}#dialog", context, status=status)
        return retarget(response, f"#{DIALOG_SLOT}")
    return render(request, f"{TEMPLATE}#links-panel", context, status=status)


@never_cache
@console_view
@require_http_methods(["GET", "POST"])
def links(request, slug, user_id):
    account, target = _target_user(request, slug, user_id)
    if request.method != "POST":
        # Back from the code a magic link asked for: the section the person had picked.
        chosen = step_up_draft(request).get("section", "")
        return _render(request, _context(request, account, target, chosen_section=chosen))
    stepped_up = step_up(request)
    if stepped_up:
        return stepped_up
    section = request.POST.get("section", "")
    try:
        issued = lifecycle.issue_magic_link(
            target, by=request.user, target=section, ip=client_ip(request)
        )
    except LifecycleError as error:
        return _render(request, _context(request, account, target, error=str(error)), status=409)
    created = magic_links.created(account, issued)
    return _render(request, _context(request, account, target, created=created))


@never_cache
@console_view
@require_POST
def revoke(request, slug, user_id, token_id):
    account, target = _target_user(request, slug, user_id)
    token = get_object_or_404(target.login_tokens, pk=token_id)
    label = token.get_purpose_display()
    with transaction.atomic():
        # Only a live token is revoked; the condition sits in the UPDATE, so a token used or
        # revoked a moment ago by someone else is left as it is.
        revoked = LoginToken.objects.filter(
            pk=token.pk,
            used_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__gt=timezone.now(),
        ).update(revoked_at=timezone.now())
        if revoked:
            audit.record(
                "revoke_link",
                by=request.user,
                subject=target,
                ip=client_ip(request),
                detail=label,
            )
    if not revoked:
        token.refresh_from_db()
        state = _status(token, timezone.now())
        error = f"This {label.lower()} is already {state}: nothing to revoke."
        return _render(request, _context(request, account, target, error=error), status=409)
    messages.success(request, f"{label} revoked: it no longer works.")
    if request.htmx:
        return _render(request, _context(request, account, target))
    return redirect("user-links", slug=account.slug, user_id=target.pk)
