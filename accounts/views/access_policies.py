"""A portal account's access policies (link lifetimes, reminders, inactivity) and the preview of
what the inactivity policy would do. Open to the account's admin and to MSSP staff."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts import scoping
from accounts.forms.access_policies import AccessPolicyForm, policy_for
from accounts.permissions import console_view
from helpers.client_ip import client_ip


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
