"""The console page where MSSP admins create and revoke a portal account's API tokens.

A new token's secret exists only in the response to the POST that created it: never in a URL,
the session, a message or a log, and that response is not cached."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts import scoping
from accounts.errors import LifecycleError
from accounts.permissions import mssp_admin_view, step_up, step_up_draft
from api import api_tokens
from api.api_tokens import latest_expiry_date
from api.forms import ApiTokenForm
from api.models import ApiToken
from helpers.client_ip import client_ip

TEMPLATE = "api/api_tokens.html"


def _page(request, account, form, *, status=200, **extra):
    context = {
        "account": account,
        "section": "api-tokens",
        "tokens": scoping.account_rows(request.user, account, ApiToken.objects).select_related(
            "created_by", "revoked_by"
        ),
        # The sync and portal-user endpoints all live under this prefix.
        "api_base": request.build_absolute_uri(f"/api/v1/accounts/{account.slug}/"),
        "form": form,
        "latest_expiry": latest_expiry_date(),
        **extra,
    }
    return render(request, TEMPLATE, context, status=status)


@never_cache
@mssp_admin_view
@require_http_methods(["GET", "POST"])
def token_list(request, slug):
    account = scoping.get_portal_account(request.user, slug)
    if request.method == "GET":
        # Back from the code a creation asked for: the form as the person had filled it in.
        form = ApiTokenForm(account=account, initial=step_up_draft(request))
        return _page(request, account, form)
    stepped_up = step_up(request)
    if stepped_up:
        return stepped_up
    form = ApiTokenForm(request.POST, account=account)
    created = form.is_valid() and form.create(by=request.user, ip=client_ip(request))
    if not created:
        return _page(request, account, form, status=400)
    token, secret = created
    return _page(request, account, ApiTokenForm(account=account), created=token, secret=secret)


@mssp_admin_view
@require_POST
def token_revoke(request, slug, api_token_id):
    account = scoping.get_portal_account(request.user, slug)
    token = scoping.get_account_row(request.user, account, ApiToken.objects, api_token_id)
    try:
        api_tokens.revoke_token(token, by=request.user, ip=client_ip(request))
    except LifecycleError as error:
        messages.info(request, str(error))
    else:
        messages.success(request, f"{token} revoked: requests using it are refused from now on.")
    return redirect("api-tokens", slug=account.slug)
