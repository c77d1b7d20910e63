"""The console's pages for a portal account's email sender (mail.sender_identity), its logo
(mail.logos) and its own wording of emails (mail.custom_emails)."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods, require_POST

from accounts import scoping
from accounts.models import EmailKind
from accounts.permissions import mssp_admin_view
from helpers.client_ip import client_ip
from helpers.file_uploads import FileSizeLimit, without_refusal
from mail import custom_email_changes, custom_emails, logos, sample_emails
from mail.forms import CustomEmailForm, LogoForm, SenderIdentityForm
from mail.models import SenderIdentity
from mail.sender_identity import dns_records, sender_of


@mssp_admin_view
@require_http_methods(["GET", "POST"])
def sender_identity(request, slug):
    return _sender_page(request, scoping.get_portal_account(request.user, slug))


def _sender_page(request, account, logo_form=None):
    identity = SenderIdentity.objects.filter(portal_account=account).first()
    identity = identity or SenderIdentity(portal_account=account)
    records = dns_records(identity.from_email)  # of the saved address, not of a refused one
    posted = request.method == "POST" and logo_form is None
    form = SenderIdentityForm(request.POST if posted else None, instance=identity)
    if posted and form.is_valid():
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
            "logo_form": logo_form or LogoForm(),
            "logo": logos.for_settings_page(account),
        },
        status=400 if form.errors or (logo_form and logo_form.errors) else 200,
    )


@csrf_exempt  # checked by _sender_logo once the size limit is in place (as imports.views.job_new)
def sender_logo(request, slug):
    limit = FileSizeLimit(
        request,
        max_bytes=logos.MAX_UPLOAD_BYTES,
        message="The image is larger than 1 MB: use a smaller one.",
    )
    request.upload_handlers = [limit, *without_refusal(request.upload_handlers)]
    return _sender_logo(request, slug, limit)


@mssp_admin_view
@require_POST
@csrf_protect
def _sender_logo(request, slug, limit):
    account = scoping.get_portal_account(request.user, slug)
    by, ip = request.user, client_ip(request)
    if request.POST.get("action") == "remove":
        if logos.remove(account, by=by, ip=ip):
            messages.success(request, f"Removed the logo of {account.name}.")
        return redirect("sender-identity", slug=account.slug)
    form = LogoForm(request.POST, request.FILES)
    if limit.refused:
        form.is_valid()
        form.errors.pop("image", None)
        form.add_error("image", limit.message)
    elif form.is_valid():
        try:
            logos.replace(account, form.cleaned_data["image"], by=by, ip=ip)
        except logos.LogoProblem as problem:
            form.add_error("image", str(problem))
        else:
            messages.success(request, f"Saved the logo of {account.name}.")
            return redirect("sender-identity", slug=account.slug)
    return _sender_page(request, account, logo_form=form)


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
    form = CustomEmailForm(
        request.POST if request.method == "POST" else None, initial=initial, kind=kind
    )
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
        if action == "test":
            if sample_emails.too_many(request.user):
                messages.error(request, "You sent many test emails in the last hour: try later.")
            else:
                sample_emails.queue(account, kind, subject, body, request.user)
                messages.success(request, f"Test email on its way to {request.user.email}.")
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
