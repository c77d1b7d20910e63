"""Portal accounts: the MSSP's list, creating and editing them, their roles, and the dashboard
every console person sees for an account in their scope."""

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts import scoping, seat_usage, sign_in_audit
from accounts.forms.portal_accounts import (
    PortalAccountForm,
    RoleForm,
    set_role_active,
    suggest_slug,
)
from accounts.models import UserType
from accounts.permissions import console_view, is_mssp_admin, mssp_admin_view, mssp_view
from accounts.user_counts import role_users
from accounts.views import audit as audit_views
from contacts.orphans import orphaned_users
from helpers.client_ip import client_ip

# The dashboard names this many of the users locked out by a deleted contact, then "and N more".
BLOCKED_NAMES_SHOWN = 5
ORPHANS_COUNTED = 100
RECENT_EVENTS = 6


def _posted(request):
    return request.POST if request.method == "POST" else None


@mssp_view
def account_list(request):
    rows = seat_usage.for_accounts(scoping.portal_accounts(request.user))
    return render(
        request,
        "accounts/portal_accounts.html",
        {
            "rows": rows,
            "user_types": list(UserType),
            "may_create": is_mssp_admin(request.user),
            "near_limit_percent": seat_usage.NEAR_LIMIT_PERCENT,
        },
    )


@mssp_admin_view
@require_http_methods(["GET", "POST"])
def account_create(request):
    if request.method == "GET" and request.htmx and "name" in request.GET:
        # As the name is typed, show the portal URL an empty slug would get.
        suggestion = suggest_slug(request.GET["name"])
        return render(
            request, "accounts/portal_account_form.html#slug-suggestion", {"suggestion": suggestion}
        )
    form = PortalAccountForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        account = form.create(by=request.user, ip=client_ip(request))
        if account is not None:
            messages.success(
                request,
                f"Portal account {account.name} created. Add its roles next; then make one of "
                f"its users the account admin on the Users page.",
            )
            return redirect("roles", slug=account.slug)
    typed_name = form["name"].value() if form.is_bound and not form["slug"].value() else ""
    return render(
        request,
        "accounts/portal_account_form.html",
        {"form": form, "suggestion": suggest_slug(typed_name or "")},
        status=400 if form.errors else 200,
    )


def _recent_activity(person, account):
    """The account's newest events (a range of the audit log's account + date index), worded
    as the audit log words them."""
    events = list(scoping.audit_events(person, account)[:RECENT_EVENTS])
    for event in events:
        event.action_label = audit_views.action_label(event.action)
        event.actor_name, _ = audit_views.person(event.actor_label or "system")
        event.subject_name, _ = audit_views.person(event.subject_label)
    return events


@console_view
def dashboard(request, slug):
    account = scoping.get_portal_account(request.user, slug)
    users = scoping.portal_users(request.user, account)
    # In the deleted contacts' index order, up to a cap: the dashboard reads a hundred orphans
    # at most, however many the account has (the Orphaned users page lists them all).
    blocked = orphaned_users(request.user, account).order_by("contact__name")
    blocked_found = list(blocked.values_list("name", flat=True)[: ORPHANS_COUNTED + 1])
    blocked_count = min(len(blocked_found), ORPHANS_COUNTED)
    return render(
        request,
        "accounts/dashboard.html",
        {
            "account": account,
            "section": "dashboard",
            "usage": seat_usage.for_account(account, scoping.user_counts(request.user, account)),
            "portal_url": settings.PORTAL_BASE_URL + account.portal_path(),
            "account_admin": users.filter(is_account_admin=True).first(),
            "blocked_count": blocked_count,
            "blocked_capped": len(blocked_found) > ORPHANS_COUNTED,
            "blocked_names": blocked_found[:BLOCKED_NAMES_SHOWN],
            "blocked_more": max(0, blocked_count - BLOCKED_NAMES_SHOWN),
            "near_limit_percent": seat_usage.NEAR_LIMIT_PERCENT,
            "refused": sign_in_audit.refused_counts(scoping.audit_events(request.user, account)),
            "recent": _recent_activity(request.user, account),
        },
    )


@mssp_admin_view
@require_http_methods(["GET", "POST"])
def account_settings(request, slug):
    account = scoping.get_portal_account(request.user, slug)
    form = PortalAccountForm(_posted(request), instance=account)
    if (
        request.method == "POST"
        and form.is_valid()
        and form.update(by=request.user, ip=client_ip(request))
    ):
        for warning in form.license_warnings:
            messages.warning(request, warning)
        if form.changes:
            messages.success(request, f"Saved the settings of {form.instance.name}.")
        else:
            messages.info(request, "Nothing to save: the settings were already like this.")
        return redirect("portal-account-settings", slug=form.instance.slug)
    usage = seat_usage.for_account(account, scoping.user_counts(request.user, account))
    return render(
        request,
        "accounts/portal_account_settings.html",
        {
            "account": account,
            "section": "settings",
            "form": form,
            "license_fields": form.license_fields_with(usage),
        },
        status=400 if form.errors else 200,
    )


def _roles_page(request, account, form, status=200):
    roles = scoping.roles(request.user, account).annotate(user_count=role_users()).order_by("name")
    return render(
        request,
        "accounts/roles.html",
        {"account": account, "section": "roles", "roles": roles, "form": form},
        status=status,
    )


@mssp_admin_view
@require_http_methods(["GET", "POST"])
def roles(request, slug):
    account = scoping.get_portal_account(request.user, slug)
    form = RoleForm(_posted(request), person=request.user, account=account)
    if request.method == "POST":
        if form.is_valid() and form.save_audited(by=request.user, ip=client_ip(request)):
            role = form.instance
            messages.success(request, f"{role.get_user_type_display()} role {role.name} added.")
            return redirect("roles", slug=account.slug)
        return _roles_page(request, account, form, status=400)
    return _roles_page(request, account, form)


@mssp_admin_view
@require_http_methods(["GET", "POST"])
def role_edit(request, slug, role_id):
    account = scoping.get_portal_account(request.user, slug)
    role = scoping.get_role(request.user, account, role_id)
    action = request.POST.get("action")
    if action in ("activate", "deactivate"):
        if set_role_active(role, action == "activate", by=request.user, ip=client_ip(request)):
            messages.success(request, f"Role {role.name} {action}d.")
        else:
            messages.info(request, f"Role {role.name} was already {action}d.")
        return redirect("roles", slug=account.slug)
    form = RoleForm(_posted(request), instance=role, person=request.user, account=account)
    if request.method == "POST" and form.is_valid():
        if not form.has_changed():
            messages.info(request, f"Role {role.name} kept its name and user type.")
            return redirect("roles", slug=account.slug)
        if form.save_audited(by=request.user, ip=client_ip(request)):
            saved = form.instance
            changes = []
            if saved.name != role.name:
                changes.append(f"renamed to {saved.name}")
            if saved.user_type != role.user_type:
                changes.append(f"now a {saved.get_user_type_display()} role")
            messages.success(request, f"Role {role.name} {' and '.join(changes)}.")
            return redirect("roles", slug=account.slug)
    return render(
        request,
        "accounts/role_edit.html",
        {
            "account": account,
            "section": "roles",
            "role": role,
            "user_count": role.counts.values_list("users", flat=True).first() or 0,
            "form": form,
        },
        status=400 if form.errors else 200,
    )
