"""Reading JSON request bodies and writing the API's answers, errors included, in one shape:
{"error": "<what to do>", "errors": [{"index": 3, "field": "email", "message": "..."}]}."""

import json

from django.http import JsonResponse


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


def read_json_object(request):
    """The body as a dict; BadPayload when it is not a JSON object."""
    if request.content_type != "application/json":
        raise BadPayload("Send the body as JSON with 'Content-Type: application/json'.")
    try:
        body = json.loads(request.body or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadPayload(f"The body is not valid JSON: {error}.") from error
    if not isinstance(body, dict):
        raise BadPayload("The body must be a JSON object.")
    return body
