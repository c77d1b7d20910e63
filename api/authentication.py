"""How the CRM API knows who calls: `Authorization: Bearer <token>`, one portal account's token.

A token reaches its own account only: any other account's slug in the URL is a 404, as if the
account did not exist, so a token cannot even confirm that another account is there."""

from functools import wraps

from django.http import Http404
from django.views.decorators.csrf import csrf_exempt

from accounts import audit, scoping
from api.json_io import error_response
from api.models import ApiToken


def _bearer_secret(request):
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


def token_api_view(view):
    """For views under /api/v1/accounts/<slug>/: checks the token, resolves the slug within its
    reach and calls `view(request, account, **kwargs)` with `request.api_token` set. Audit
    events written inside name the token as the actor."""

    @csrf_exempt  # no cookies are involved: the token in the header is the credential
    @wraps(view)
    def wrapped(request, slug, **kwargs):
        token = ApiToken.find(_bearer_secret(request))
        if token is None:
            response = error_response(
                401,
                "Missing, unknown or revoked API token. Send 'Authorization: Bearer <token>' "
                "with a live token from the portal account's API tokens page.",
            )
            response["WWW-Authenticate"] = 'Bearer realm="portal-admin"'
            return response
        try:
            account = scoping.get_portal_account(token, slug)
            token.mark_used()
            request.api_token = token
            with audit.acting_as(str(token)):
                return view(request, account, **kwargs)
        except Http404:
            return error_response(404, "Not found.")

    return wrapped
