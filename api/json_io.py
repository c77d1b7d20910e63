"""Reading JSON request bodies and writing the API's answers, errors included, in one shape:
{"error": "<what to do>", "errors": [{"index": 3, "field": "email", "message": "..."}]}."""

import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.views import defaults

from helpers.sizes import size_text


class BadPayload(Exception):
    """A request body the API cannot use. `errors` lists what is wrong, item by item."""

    def __init__(self, message, errors=()):
        super().__init__(message)
        self.message = message
        self.errors = list(errors)


def error_response(status, message, errors=None):
    body = {"error": message}
    if errors:
        body["errors"] = errors
    return JsonResponse(body, status=status)


def read_json_object(request, *, empty_ok=False, too_large_hint=""):
    """The body as a dict ({} for an empty body if empty_ok); BadPayload when it is too large
    or not a JSON object."""
    try:
        raw = request.body
    except RequestDataTooBig:
        limit = size_text(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        raise BadPayload(
            f"The body is too large: at most {limit}. {too_large_hint}".strip()
        ) from None
    if empty_ok and not raw:
        return {}
    if request.content_type != "application/json":
        raise BadPayload("Send the body as JSON with 'Content-Type: application/json'.")
    try:
        body = json.loads(raw or b"null")
    # ValueError covers malformed JSON and numbers longer than Python converts; RecursionError
    # a body nested too deep.
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise BadPayload(f"The body is not valid JSON: {error}.") from None
    if not isinstance(body, dict):
        raise BadPayload("The body must be a JSON object.")
    return body


def not_found(request, exception):
    """The site's 404 handler: the API answers in JSON even for a URL it does not have."""
    if request.path.startswith("/api/"):
        return error_response(404, f"No API endpoint at {request.path}. See /api/v1/openapi.json.")
    return defaults.page_not_found(request, exception)
