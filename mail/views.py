"""The console's page for a portal account's email sender (mail.sender_identity)."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts import scoping
from accounts.models import EmailKind
from accounts.permissions import mssp_admin_view
from helpers.client_ip import client_ip
from mail import custom_email_changes, custom_emails
from mail.forms import CustomEmailForm, SenderIdentityForm
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


@mssp_admin_view
def custom_email_list(request, slug):
    account = scoping.get_portal_account(request.user, slug)
    own = {custom.kind: custom for custom in account.custom_emails.all()}
    kinds = [(kind, kind.label, own.get(kind)) for kind in custom_emails.EDITABLE]
    return render(
        request,
        "mail/custom_emails.html",
        {"account": account, "section": "settings", "kinds": kinds},
    )


@mssp_admin_view
@require_http_methods(["GET", "POST"])
def custom_email_edit(request, slug, kind):
    account = scoping.get_portal_account(request.user, slug)
    if kind not in custom_emails.EDITABLE:
        raise Http404
    kind = EmailKind(kind)
    custom = account.custom_emails.filter(kind=kind).first()
    _carries, default_subject, default_body = custom_emails.EDITABLE[kind]
    initial = {
        "subject": custom.subject if custom else default_subject,
        "body": custom.body if custom else default_body,
    }
    form = CustomEmailForm(request.POST or None, initial=initial, kind=kind)
    action = request.POST.get("action", "preview")
    if request.method == "POST" and action == "reset":
        if custom_email_changes.reset(account, kind, by=request.user, ip=client_ip(request)):
            messages.success(request, f"{kind.label} emails use the default wording again.")
        return redirect("custom-emails", slug=account.slug)
    preview = None
    if request.method == "POST" and form.is_valid():
        subject, body = form.cleaned_data["subject"], form.cleaned_data["body"]
        if action == "save":
            if custom_email_changes.save(
                account, kind, subject, body, by=request.user, ip=client_ip(request)
            ):
                messages.success(request, f"Saved the wording of {kind.label.lower()} emails.")
            else:
                messages.info(request, "Nothing to save: the wording was already like this.")
            return redirect("custom-emails", slug=account.slug)
        preview = custom_email_changes.preview(account, kind, subject, body)
    elif request.method == "GET":
        preview = custom_email_changes.preview(account, kind, **initial)
    return render(
        request,
        "mail/custom_email_edit.html",
        {
            "account": account,
            "section": "settings",
            "kind": kind,
            "form": form,
            "custom": custom,
            "preview": preview,
        },
        status=400 if form.errors else 200,
    )
