"""One page per portal user: who they are, their state, role and contact, the emails sent to
them, their sign-ins and the audit history about them, with every action their row offers.
Every list on it is bounded: the page costs the same for a user with years of history."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts import lifecycle, scoping, sign_in_audit, signed_in_sessions
from accounts.errors import LifecycleError
from accounts.forms.users import AccessEndForm
from accounts.models import OutboxEmail
from accounts.permissions import check_may_act_on, console_view, may_act_on
from accounts.user_actions import row_actions
from accounts.views.audit import action_label, changes, person
from helpers.client_ip import client_ip

SHOWN = 20


@never_cache
@console_view
def user_page(request, slug, user_id):
    account = scoping.get_portal_account(request.user, slug)
    target = scoping.get_portal_user(request.user, account, user_id)
    return _page(request, account, target)


def _page(request, account, target, access_end_form=None, status=200):
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
    # The rows of sessions that idled out stay until the user's next sign-in: not counted, and
    # with none open there is nothing to end.
    open_sessions = signed_in_sessions.open_sessions(target).count()
    actions = row_actions(request.user, target)
    if not open_sessions:
        actions = [action for action in actions if action.name != "end-sessions"]
    context = {
        "account": account,
        "section": "users",
        "target": target,
        "actions": actions,
        "emails": OutboxEmail.objects.filter(user=target).order_by("-queued_at", "-pk")[:SHOWN],
        "sign_ins": sign_ins,
        "history": history,
        "open_sessions": open_sessions,
        "shown": SHOWN,
        "access_end_form": (
            access_end_form or AccessEndForm(initial={"access_ends_on": target.access_ends_on})
        )
        if may_act_on(request.user, target)
        else None,
    }
    return render(request, "accounts/user_page.html", context, status=status)


@never_cache
@console_view
@require_POST
def access_end(request, slug, user_id):
    """Set or clear the user's access end date (accounts.expiry acts on it)."""
    account = scoping.get_portal_account(request.user, slug)
    target = scoping.get_portal_user(request.user, account, user_id)
    check_may_act_on(request.user, target)
    form = AccessEndForm(request.POST)
    if form.is_valid():
        ends_on = form.cleaned_data["access_ends_on"]
        try:
            changed = lifecycle.set_access_end(
                target, ends_on, by=request.user, ip=client_ip(request)
            )
        except LifecycleError as error:
            form.add_error("access_ends_on", str(error))
        else:
            if not changed:
                messages.info(request, "Nothing to save: the access end date was already so.")
            elif ends_on:
                messages.success(request, f"{target.name}'s access ends on {ends_on:%b %-d, %Y}.")
            else:
                messages.success(request, f"{target.name}'s access has no end date now.")
            return redirect("user", slug=account.slug, user_id=target.pk)
    return _page(request, account, target, access_end_form=form, status=400)
