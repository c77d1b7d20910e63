"""How the CRM API knows who calls: `Authorization: Bearer <token>`, one portal account's token.

A token reaches its own account only: any other account's slug in the URL is a 404, as if the
account did not exist, so a token cannot even confirm that another account is there.

`api_view` is what every endpoint under /api/v1/accounts/<slug>/ wears: the method (JSON 405),
the token and tenant, and the caller's errors as JSON (400 for a body it cannot use, 409 for a
change the rules refuse)."""

from functools import wraps

from django.http import Http404
from django.views.decorators.csrf import csrf_exempt

from accounts import audit, scoping
from accounts.errors import LifecycleError
from api.json_io import BadPayload, error_response
from api.models import ApiToken
from contacts.sync import InvalidBatch


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


def allow(*methods):
    """405 as JSON, naming the methods that work."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if request.method not in methods:
                response = error_response(405, f"Use {' or '.join(methods)} here.")
                response["Allow"] = ", ".join(methods)
                return response
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def api_view(*methods):
    """Token, tenant and method checked; caller errors answered as JSON 400 / 409."""

    def decorator(view):
        @allow(*methods)
        @token_api_view
        @wraps(view)
        def wrapped(request, account, **kwargs):
            try:
                return view(request, account, **kwargs)
            except (BadPayload, InvalidBatch) as error:
                return error_response(400, error.message, error.errors)
            except LifecycleError as error:
                return error_response(409, str(error))

        return wrapped

    return decorator
