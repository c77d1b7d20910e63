"""The audit log: one portal account's events, or (MSSP admins) every event."""

from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import render
from django.utils.cache import patch_vary_headers

from accounts import scoping, sign_in_audit, signed_in_sessions
from accounts.models import UserKind
from accounts.permissions import console_view, mssp_admin_view
from helpers.search_terms import search_term

PAGE_SIZE = 50
# An account's history grows for ever: the log counts its events up to here and says "more than"
# past it (older events stay reachable through the filters), as the Users page search does.
COUNT_CAP = 10_000

# Every stored action code, shown in one voice: past tense, sentence case, the verb first. The
# codes stay as they are in the database (filters and exports use them); only the words change.
ACTION_LABELS = {
    "invite": "Invited",
    "activate": "Activated",
    "enable": "Enabled",
    "disable": "Disabled",
    "delete": "Deleted",
    "reinvite": "Reinvited",
    "reset_password": "Sent password reset",
    "set_new_password": "Set a new password",
    "change_role": "Changed role",
    "make_account_admin": "Made account admin",
    "remove_account_admin": "Removed account admin",
    "send_login_email": "Sent login email",
    "send_login_code": "Sent sign-in code",
    "send_access_blocked": "Sent account-disabled notice",
    "issue_magic_link": "Created magic link",
    "revoke_link": "Revoked link",
    "confirm_email_change": "Confirmed new sign-in email",
    "resend_email_confirmation": "Sent new email's confirmation again",
    "email_retried": "Retried email",
    "email_bounced": "Bounced email (address refused)",
    "create_api_token": "Created API token",
    "revoke_api_token": "Revoked API token",
    "create_portal_account": "Created portal account",
    "update_portal_account": "Changed portal account",
    "change_sender": "Changed email sender",
    "change_logo": "Changed logo",
    "remove_logo": "Removed logo",
    "change_email_wording": "Changed an email's wording",
    "reset_email_wording": "Reset an email's wording",
    "create_role": "Created role",
    "rename_role": "Renamed role",
    "change_role_type": "Changed role's user type",
    # Written once by migration accounts 0015, when roles got their user type.
    "set_role_type": "Set role's user type",
    "split_role": "Split role by user type",
    "activate_role": "Activated role",
    "deactivate_role": "Deactivated role",
    "create_contact": "Created contact",
    "update_contact": "Changed contact",
    "delete_contact": "Deleted contact",
    "restore_contact": "Restored contact",
    "merge_contacts": "Merged contacts",
    "move_user_to_contact": "Moved user to another contact",
    "user_follows_contact": "Updated user from CRM contact",
    "sync_contacts": "Synced contacts from CRM",
    "sync_delete_contacts": "Deleted contacts in CRM sync",
    "sync_restore_contacts": "Restored contacts in CRM sync",
    "sync_merge_contacts": "Merged contacts in CRM sync",
    "turn_on_two_factor": "Turned on two-factor sign-in",
    "turn_off_two_factor": "Turned off two-factor sign-in",
    "new_recovery_codes": "Made new recovery codes",
    "two_factor_verified": "Passed two-factor check",
    "two_factor_failed": "Failed two-factor check",
    "discard_import": "Discarded import draft",
    "update_access_policy": "Changed access policies",
    "send_invitation_reminder": "Sent invitation reminder",
    "send_inactivity_warning": "Sent inactivity warning",
    "change_access_end": "Changed access end date",
    "create_webhook_endpoint": "Created webhook endpoint",
    "update_webhook_endpoint": "Changed webhook endpoint",
    "delete_webhook_endpoint": "Deleted webhook endpoint",
    "rotate_webhook_secret": "Rotated webhook secret",
    "redeliver_webhook": "Redelivered webhook event",
    sign_in_audit.SIGN_IN: "Signed in",
    sign_in_audit.SIGN_IN_FAILED: "Failed to sign in",
    sign_in_audit.LOCKED_OUT: "Locked out of sign-in",
    sign_in_audit.SIGN_OUT: "Signed out",
    signed_in_sessions.END_SESSIONS: "Ended sessions",
}
# Filters that pick several actions at once: ?action=sign-ins.
ACTION_GROUPS = {
    "sign-ins": ("All sign-in events", sign_in_audit.SIGN_IN_ACTIONS),
    "sign-ins-refused": ("Failed sign-ins and lockouts", sign_in_audit.REFUSED_ACTIONS),
}
# Events whose door and method replace the list of changes.
_SIGN_IN_EVENTS = {
    sign_in_audit.SIGN_IN,
    sign_in_audit.SIGN_IN_FAILED,
    sign_in_audit.LOCKED_OUT,
    sign_in_audit.SIGN_OUT,
}
FIELD_LABELS = {"is_account_admin": "account admin"}


def action_label(action):
    return ACTION_LABELS.get(action) or action.replace("_", " ").capitalize()


def _shown(value):
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_shown(item) for item in value) or "none"
    return str(value)


def changes(before, after):
    """(field, old, new) for each value that changed; old is None for a value that is new.
    A row that only records what was there (a delete with nothing after) lists that. A value
    that is itself a set of values (a merge keeps the loser's and the user's) is listed field
    by field under its name, never as a Python dict."""
    before, after = _flat(before or {}), _flat(after or {})
    rows = []
    for key in after or before:
        old, new = before.get(key), after.get(key)
        if key in before and key in after and old == new:
            continue
        rows.append(
            (
                key,
                _shown(old) if key in before else None,
                _shown(new) if key in after else "gone",
            )
        )
    return rows


def _flat(values, prefix=""):
    flat = {}
    for key, value in values.items():
        name = f"{prefix}{FIELD_LABELS.get(key, key.replace('_', ' '))}"
        if isinstance(value, dict):
            flat |= _flat(value, f"{name} ")
        else:
            flat[name] = value
    return flat


def person(label):
    """("Grace Hopper", "grace@example.com") from the label "Grace Hopper <grace@example.com>"."""
    name, _, email = label.partition(" <")
    return name, email.removesuffix(">")


def _filtered(request, events):
    # search_term: PostgreSQL refuses a NUL in a text value (a 500), and the length is capped.
    action = search_term(request.GET, "action")
    who = search_term(request.GET, "person")
    if action in ACTION_GROUPS:
        events = events.filter(action__in=ACTION_GROUPS[action][1])
    elif action:
        events = events.filter(action=action)
    if who:
        events = events.filter(Q(actor_label__icontains=who) | Q(subject_label__icontains=who))
    return events, {"action": action, "person": who}


def _staff_addresses_hidden(viewer, event):
    """An account's admin sees where their own people acted from, not where MSSP staff did
    (nor someone since deleted, who may have been staff): staff addresses are MSSP-only."""
    if viewer.is_mssp or event.actor_id is None:
        return False
    return event.actor is None or event.actor.kind != UserKind.PORTAL


def _render_log(request, events, context):
    events = events.select_related("portal_account", "actor")
    events, filters = _filtered(request, events)
    # The labelled actions (and the one filtered by), not a DISTINCT over the whole history.
    action_choices = sorted(
        {*ACTION_LABELS, *([filters["action"]] if filters["action"] not in ACTION_GROUPS else [])}
        - {""},
        key=action_label,
    )
    paginator = Paginator(events, PAGE_SIZE)
    found = events.order_by()[: COUNT_CAP + 1].count()
    paginator.count, paginator.capped = min(found, COUNT_CAP), found > COUNT_CAP
    page = paginator.get_page(request.GET.get("page"))
    for event in page:
        event.action_label = action_label(event.action)
        event.changes = changes(event.before, event.after)
        event.actor_name, event.actor_email = person(event.actor_label or "system")
        event.subject_name, event.subject_email = person(event.subject_label)
        if _staff_addresses_hidden(request.user, event):
            event.ip_address, event.user_agent = None, ""
        event.device = signed_in_sessions.describe_device(event.user_agent)
        if event.action in _SIGN_IN_EVENTS:
            event.how, event.changes = sign_in_audit.describe(event), []
    context |= {
        "page": page,
        "filters": filters,
        "filter_query": urlencode({k: v for k, v in filters.items() if v}),
        "actions": [(action, action_label(action)) for action in action_choices],
        "action_groups": [(value, label) for value, (label, _) in ACTION_GROUPS.items()],
    }
    partial = request.htmx and not request.htmx.history_restore_request
    response = render(request, "accounts/audit_log.html" + ("#rows" if partial else ""), context)
    # The same URL answers with a fragment or a page; caches must tell them apart.
    patch_vary_headers(response, ["HX-Request"])
    return response


@console_view
def account_log(request, slug):
    account = scoping.get_portal_account(request.user, slug)
    events = scoping.audit_events(request.user, account)
    context = {"account": account, "section": "audit", "layout": "accounts/account_base.html"}
    return _render_log(request, events, context)


@mssp_admin_view
def global_log(request):
    events = scoping.audit_events(request.user)
    return _render_log(request, events, {"account": None, "layout": "base.html"})
