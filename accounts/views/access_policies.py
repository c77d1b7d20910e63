"""A portal account's access policies (link lifetimes, reminders, inactivity) and the preview of
what the inactivity policy would do. Open to the account's admin and to MSSP staff."""

from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from accounts import inactivity, scoping
from accounts.forms.access_policies import (
    AccessPolicyForm,
    InactivityPreviewForm,
    policy_for,
    preview_defaults,
)
from accounts.models import UserType
from accounts.permissions import console_view
from helpers.client_ip import client_ip

PREVIEW_CAP = 1000
PREVIEW_PAGE_SIZE = 50


@console_view
@require_http_methods(["GET", "POST"])
def access_policies(request, slug):
    account = scoping.get_portal_account(request.user, slug)
    form = AccessPolicyForm(
        request.POST if request.method == "POST" else None, instance=policy_for(account)
    )
    if request.method == "POST" and form.is_valid():
        if form.save_audited(account, by=request.user, ip=client_ip(request)):
            messages.success(request, "Saved the access policies.")
        else:
            messages.info(request, "Nothing to save: the policies were already like this.")
        return redirect("access-policies", slug=account.slug)
    return render(
        request,
        "accounts/access_policies.html",
        {"account": account, "section": "policies", "form": form},
        status=400 if form.errors else 200,
    )


@console_view
def inactivity_preview(request, slug):
    """Who the inactivity policy would warn and disable, and when: the saved numbers, or the
    ones typed here (nothing is saved). Paged, and capped at PREVIEW_CAP users."""
    account = scoping.get_portal_account(request.user, slug)
    policy = policy_for(account)
    params = request.GET if "days" in request.GET else None
    form = InactivityPreviewForm(params or preview_defaults(policy))
    context = {"account": account, "section": "policies", "form": form, "cap": PREVIEW_CAP}
    if form.is_valid():
        data = form.cleaned_data
        rule = inactivity.Rule(
            account.pk,
            UserType(data["user_type"]),
            data["days"],
            data["warning_days"],
            timezone.now(),
        )
        ids = inactivity.preview(rule, scoping.portal_users(request.user, account), PREVIEW_CAP)
        page = Paginator(ids[:PREVIEW_CAP], PREVIEW_PAGE_SIZE).get_page(request.GET.get("page"))
        users = scoping.portal_users(request.user, account).select_related("contact", "role")
        loaded = {user.pk: user for user in users.filter(pk__in=list(page.object_list))}
        shown = [loaded[pk] for pk in page.object_list if pk in loaded]
        active = inactivity.last_active(shown)
        for user in shown:
            user.last_active = active[user.pk]
            user.disable_on = rule.disable_on(user, active[user.pk])
            user.warned = rule.warned(user, active[user.pk])
        saved = policy.inactive_days(data["user_type"])
        context.update(
            page=page,
            rows=shown,
            capped=len(ids) > PREVIEW_CAP,
            rule=rule,
            saved=saved == data["days"] and policy.inactivity_warning_days == data["warning_days"],
            query=urlencode({k: v for k, v in form.data.items() if k != "page"}),
        )
    return render(
        request,
        "accounts/inactivity_preview.html",
        context,
        status=200 if form.is_valid() else 400,
    )
