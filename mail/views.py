"""The console's page for a portal account's email sender (mail.sender_identity)."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts import scoping
from accounts.permissions import mssp_admin_view
from helpers.client_ip import client_ip
from mail.forms import SenderIdentityForm
from mail.models import SenderIdentity
from mail.sender_identity import dns_records, sender_of


@mssp_admin_view
@require_http_methods(["GET", "POST"])
def sender_identity(request, slug):
    account = scoping.get_portal_account(request.user, slug)
    identity = SenderIdentity.objects.filter(portal_account=account).first()
    identity = identity or SenderIdentity(portal_account=account)
    records = dns_records(identity.from_email)  # of the saved address, not of a refused one
    form = SenderIdentityForm(request.POST or None, instance=identity)
    if request.method == "POST" and form.is_valid():
        if form.save_audited(by=request.user, ip=client_ip(request)):
            messages.success(request, f"Saved the email sender of {account.name}.")
        else:
            messages.info(request, "Nothing to save: the sender was already like this.")
        return redirect("sender-identity", slug=account.slug)
    return render(
        request,
        "mail/sender_identity.html",
        {
            "account": account,
            "section": "settings",
            "form": form,
            "sender": sender_of(account),
            "records": records,
        },
        status=400 if form.errors else 200,
    )
