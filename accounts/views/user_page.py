"""One page per portal user: who they are, their state, role and contact, the emails sent to
them, their sign-ins and the audit history about them, with every action their row offers.
Every list on it is bounded: the page costs the same for a user with years of history."""

from django.shortcuts import render
from django.views.decorators.cache import never_cache

from accounts import scoping, sign_in_audit
from accounts.models import OutboxEmail, SignedInSession
from accounts.permissions import console_view
from accounts.user_actions import row_actions
from accounts.views.audit import action_label, changes, person

SHOWN = 20


@never_cache
@console_view
def user_page(request, slug, user_id):
    account = scoping.get_portal_account(request.user, slug)
    target = scoping.get_portal_user(request.user, account, user_id)
    target = type(target).objects.select_related("role", "contact", "disabled_by").get(pk=target.pk)
    events = scoping.audit_events(request.user, account).filter(subject_user=target)
    sign_ins = list(events.filter(action__in=sign_in_audit.SIGN_IN_ACTIONS)[:SHOWN])
    for event in sign_ins:
        event.how = sign_in_audit.describe(event)
        event.action_label = action_label(event.action)
    history = list(
        events.exclude(action__in=sign_in_audit.SIGN_IN_ACTIONS).select_related("actor")[:SHOWN]
    )
    for event in history:
        event.action_label = action_label(event.action)
        event.actor_name = person(event.actor_label or "system")[0]
        event.changes = changes(event.before, event.after)
    context = {
        "account": account,
        "section": "users",
        "target": target,
        "actions": row_actions(request.user, target),
        "emails": OutboxEmail.objects.filter(user=target).order_by("-queued_at", "-pk")[:SHOWN],
        "sign_ins": sign_ins,
        "history": history,
        "open_sessions": SignedInSession.objects.filter(user=target).count(),
        "shown": SHOWN,
    }
    return render(request, "accounts/user_page.html", context)
