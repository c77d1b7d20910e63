"""How the CRM API knows who calls: `Authorization: Bearer <token>`, one portal account's token.

A token reaches its own account only: any other account's slug in the URL is a 404, as if the
account did not exist, so a token cannot even confirm that another account is there.

A token has a scope: "sync" calls the contact sync endpoints only, "read" looks portal users up
(GET) only, "full" calls everything. Each endpoint names the scope it needs; another token gets
a 403 that names it. An expired token is refused like a revoked one (401).

`api_view` is what every endpoint under /api/v1/accounts/<slug>/ wears: the method (JSON 405),
the token, its scope and tenant, and the caller's errors as JSON (400 for a body it cannot use,
409 for a change the rules refuse)."""

from functools import wraps

from django.http import Http404
from django.views.decorators.csrf import csrf_exempt

from accounts import audit, scoping
from accounts.errors import LifecycleError, TooManyEmails
from api.json_io import BadPayload, error_response
from api.models import ApiToken
from contacts.sync import InvalidBatch
from helpers.client_ip import client_ip

Scope = ApiToken.Scope
# What each scope lets a token do, for the 403 that names the scope an endpoint needs.
SCOPE_REACH = {
    Scope.SYNC: "the contact sync endpoints only",
    Scope.READ: "looking up portal users only",
    Scope.FULL: "every endpoint",
}


def _bearer_secret(request):
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


def _unauthorized(message):
    response = error_response(401, message)
    response["WWW-Authenticate"] = 'Bearer realm="portal-admin"'
    return response


def _wrong_scope(token, needed):
    return error_response(
        403,
        f"This endpoint needs an API token with the '{needed}' scope. This token has the "
        f"'{token.scope}' scope ({SCOPE_REACH[token.scope]}): create a token with the "
        f"'{needed}' scope on the portal account's API tokens page.",
    )


def token_api_view(view=None, *, scope=Scope.FULL):
    """For views under /api/v1/accounts/<slug>/: checks the token, resolves the slug within its
    reach, checks that the token has `scope` and calls `view(request, account, **kwargs)` with
    `request.api_token` set. Audit events written inside name the token as the actor."""
    if view is None:
        return lambda view: token_api_view(view, scope=scope)

    @csrf_exempt  # no cookies are involved: the token in the header is the credential
    @wraps(view)
    def wrapped(request, slug, **kwargs):
        token = ApiToken.find(_bearer_secret(request))
        if token is None:
            return _unauthorized(
                "Missing, unknown or revoked API token. Send 'Authorization: Bearer <token>' "
                "with a live token from the portal account's API tokens page."
            )
        if token.is_expired:
            return _unauthorized(
                f"This API token expired on {token.expires_at:%Y-%m-%d %H:%M %Z}. Create a new "
                "one on the portal account's API tokens page."
            )
        try:
            account = scoping.get_portal_account(token, slug)
        except Http404:
            return error_response(404, "Not found.")
        token.mark_used(client_ip(request))
        if not token.allows(scope):
            return _wrong_scope(token, scope)
        request.api_token = token
        try:
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


def api_view(*methods, scope):
    """Method, token, tenant and the token's `scope` checked; caller errors answered as JSON
    400 / 409. Every endpoint names the scope it needs."""

    def decorator(view):
        @allow(*methods)
        @token_api_view(scope=scope)
        @wraps(view)
        def wrapped(request, account, **kwargs):
            try:
                return view(request, account, **kwargs)
            except (BadPayload, InvalidBatch) as error:
                return error_response(400, error.message, error.errors)
            except TooManyEmails as error:
                response = error_response(429, str(error))
                response["Retry-After"] = str(error.retry_after_seconds)
                return response
            except LifecycleError as error:
                return error_response(409, str(error))

        return wrapped

    return decorator
