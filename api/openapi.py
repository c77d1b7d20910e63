"""The OpenAPI 3.1 schema of /api/v1/ (contact sync and portal-user API) and of the webhooks the
console's Webhooks pages send (its `webhooks` section), served at /api/v1/openapi.json without
a token. Written by hand next to the views it describes;
tests/test_api_schema.py keeps the two in step (every URL described, every answer documented,
every body as described)."""

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from accounts.lifecycle import PORTAL_SECTIONS
from api.authentication import allow
from webhooks.models import EventType


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def _json(description, schema, headers=None):
    response = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _error(description, headers=None):
    return _json(description, _ref("Error"), headers)


def _nullable(schema):
    nullable = {**schema, "type": [schema.get("type", "string"), "null"]}
    if "enum" in schema:
        nullable["enum"] = [*schema["enum"], None]
    return nullable


_STRING = {"type": "string"}
_DATE_TIME = {"type": "string", "format": "date-time"}
_ACCESS_END = {
    "type": "string",
    "format": "date",
    "description": "The user is disabled at the start of this day (UTC); null: no end.",
}
_COUNT = {"type": "integer", "minimum": 0}
_HEADER = {"schema": _STRING}


def _object(properties, required=(), **extra):
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return {**schema, **extra}


_CONTACT_ID = {**_STRING, "pattern": "^[A-Za-z0-9]{19}$"}
_SALESFORCE_ID = {**_STRING, "pattern": "^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$"}


def _batch(key, item):
    """A sync request: one list of at most 1,000 items, applied all or nothing."""
    return _object({key: {"type": "array", "maxItems": 1000, "items": item}}, [key])


def _sync_result(outcomes, **item_extra):
    """A sync answer: a count per outcome and each item's outcome, in the items' order."""
    item = _object(
        {
            "index": _COUNT,
            "contact_id": _STRING,
            "salesforce_id": _nullable(_STRING),
            "outcome": {"enum": outcomes},
            **item_extra,
        },
        ["index", "contact_id", "salesforce_id", "outcome", *item_extra],
    )
    counts = {outcome: _COUNT for outcome in outcomes}
    return _object({**counts, "results": {"type": "array", "items": item}}, [*counts, "results"])


SCHEMAS = {
    "Error": _object(
        {
            "error": {**_STRING, "description": "What is wrong and what to do, fit to show."},
            "errors": {"type": "array", "items": _ref("ErrorItem")},
        },
        ["error"],
    ),
    "ErrorItem": _object(
        {
            "index": {
                **_COUNT,
                "description": "Position of the item in the request's list (batch requests).",
            },
            "field": {
                **_nullable(_STRING),
                "description": "The field at fault ('winner.contact_id'); null for the whole item.",
            },
            "message": _STRING,
        },
        ["message"],
    ),
    "Contact": _object(
        {
            "contact_id": {**_STRING, "minLength": 19, "maxLength": 19},
            "salesforce_id": _nullable({**_STRING, "minLength": 18, "maxLength": 18}),
            "name": _STRING,
            "email": _STRING,
            "crm_account_name": _STRING,
            "deleted": {"type": "boolean", "description": "In the CRM's recycle bin."},
        },
        ["contact_id", "salesforce_id", "name", "email", "crm_account_name", "deleted"],
    ),
    "PortalUser": _object(
        {
            "id": {"type": "integer"},
            "state": {"enum": ["unconfirmed", "enabled", "disabled"]},
            "user_type": {"enum": ["partner", "customer", "employee"]},
            "role": _nullable(_STRING),
            "email": _STRING,
            "is_account_admin": {"type": "boolean"},
            "invited_at": _nullable(_DATE_TIME),
            "activated_at": _nullable(_DATE_TIME),
            "last_login": _nullable(_DATE_TIME),
            "access_ends_on": _nullable(_ACCESS_END),
        },
        ["id", "state", "user_type", "role", "email", "is_account_admin"]
        + ["invited_at", "activated_at", "last_login", "access_ends_on"],
    ),
    "PortalUserStatus": _object(
        {
            "contact": _ref("Contact"),
            "portal_user": {"oneOf": [{"type": "null"}, _ref("PortalUser")]},
            "allowed_actions": {
                "type": "array",
                "description": "The actions the rules allow this token now; each is a POST "
                "to .../portal-user/<action>/. Empty for a token without the 'full' scope.",
                "items": {
                    "enum": [
                        "enable",
                        "disable",
                        "reactivate",
                        "reinvite",
                        "delete",
                        "reset-password",
                        "change-role",
                        "magic-link",
                        "send-login-email",
                    ]
                },
                "uniqueItems": True,
            },
            "roles": {
                "type": "array",
                "items": _STRING,
                "description": "The account's active partner and customer roles, to pick "
                "from (a role decides the user type; employee roles are not for contacts).",
            },
        },
        ["contact", "portal_user", "allowed_actions", "roles"],
    ),
    "MagicLink": _object(
        {
            "url": {**_STRING, "format": "uri", "description": "Signs the user in once."},
            "expires_at": _DATE_TIME,
            "target": _nullable({"type": "string", "enum": list(PORTAL_SECTIONS)}),
        },
        ["url", "expires_at", "target"],
    ),
    "Empty": _object({}, description="No fields: send {} or no body at all."),
    "Role": _object(
        {"role": {**_STRING, "description": "An active role's name, matched case-sensitively."}},
        ["role"],
    ),
    "Enable": _object(
        {
            "role": {**_STRING, "description": "An active role's name, matched case-sensitively."},
            "user_type": _nullable(
                {
                    "type": "string",
                    "enum": ["partner", "customer"],
                    "description": "Optional: the user type comes from the role. If sent, it "
                    "must be the role's type; another one is refused with 400.",
                }
            ),
            "send_invitation": _nullable({"type": "boolean", "default": True}),
            "access_ends_on": _nullable(_ACCESS_END),
        },
        ["role"],
    ),
    "AccessEnd": _object({"access_ends_on": _nullable(_ACCESS_END)}),
    "Target": _object(
        {
            "target": _nullable(
                {
                    "type": "string",
                    "enum": list(PORTAL_SECTIONS),
                    "description": "The portal section to open; none for the portal's home.",
                }
            )
        }
    ),
    # The contact sync (api/sync_views.py, contacts/sync_items.py).
    "ContactRef": _object(
        {"contact_id": _nullable(_CONTACT_ID), "salesforce_id": _nullable(_SALESFORCE_ID)},
        description="A contact by its contact_id and/or salesforce_id (both must name it).",
    ),
    "UpsertContacts": _batch(
        "contacts",
        _object(
            {
                "contact_id": _nullable(_CONTACT_ID),
                "salesforce_id": _nullable(_SALESFORCE_ID),
                "name": {**_STRING, "minLength": 1, "maxLength": 200},
                "email": _nullable({**_STRING, "maxLength": 254}),
                "crm_account_name": _nullable({**_STRING, "maxLength": 200}),
            },
            ["name"],
            description="A field left out is left as it is; null or '' clears email and CRM "
            "account name. contact_id or salesforce_id is needed.",
        ),
    ),
    "ContactRefs": _batch("contacts", _ref("ContactRef")),
    "MergeContacts": _batch(
        "merges",
        _object({"winner": _ref("ContactRef"), "loser": _ref("ContactRef")}, ["winner", "loser"]),
    ),
    "UpsertResult": _sync_result(["created", "updated", "unchanged"]),
    "DeleteResult": _sync_result(["deleted", "unchanged"]),
    "RestoreResult": _sync_result(["restored", "unchanged"]),
    "MergeResult": _sync_result(
        ["merged", "unchanged"],
        loser=_object(
            {"contact_id": _STRING, "salesforce_id": _nullable(_STRING)},
            ["contact_id", "salesforce_id"],
        ),
    ),
}

RESPONSES = {
    "BadRequest": _error(
        "The body cannot be used: not JSON, wrong or unknown fields, an unknown or inactive "
        "role. Nothing was changed."
    ),
    "Unauthorized": _error(
        "Missing, unknown, revoked or expired API token.", {"WWW-Authenticate": _HEADER}
    ),
    "Forbidden": _error(
        "The token's scope does not reach this endpoint; the error names the scope it needs."
    ),
    "NotFound": _error("No such portal account or contact within this token's reach."),
    "MethodNotAllowed": _error("Another method is expected here.", {"Allow": _HEADER}),
    "Conflict": _error(
        "The rules refuse the action now (the user's state, a deleted contact, no licenses "
        "left), or another request changed the same contacts at that moment (send the batch "
        "again). Nothing was changed."
    ),
    "Status": _json("The contact's portal access now.", _ref("PortalUserStatus")),
}


def _responses(ok, *codes):
    names = {
        "400": "BadRequest",
        "401": "Unauthorized",
        "403": "Forbidden",
        "404": "NotFound",
        "405": "MethodNotAllowed",
        "409": "Conflict",
    }
    return {**ok, **{code: {"$ref": f"#/components/responses/{names[code]}"} for code in codes}}


def _body(schema_name, required):
    return {
        "required": required,
        "content": {"application/json": {"schema": _ref(schema_name)}},
    }


def _needs(scope):
    """An operation's description: the token scope it needs ("full" reaches everything)."""
    if scope == "full":
        return "Needs a token with the 'full' scope."
    return f"Needs a token with the '{scope}' or the 'full' scope."


def _post(summary, body, ok, *, scope, body_required=False):
    return {
        "post": {
            "summary": summary,
            "description": _needs(scope),
            "requestBody": _body(body, body_required),
            "responses": _responses(ok, "400", "401", "403", "404", "405", "409"),
        }
    }


_STATUS = {"200": {"$ref": "#/components/responses/Status"}}
_PORTAL_USER = "/accounts/{slug}/contacts/{contact_ref}/portal-user/"
_SYNC = "/accounts/{slug}/contacts/"


def _sync(summary, body, result):
    ok = {"200": _json("Every item applied (or already so).", _ref(result))}
    return _post(summary, body, ok, scope="sync", body_required=True)


def _portal_user_paths():
    actions = {
        "enable/": (
            "Give the contact a portal user (unconfirmed), with an invitation by default.",
            "Enable",
            {"201": {"$ref": "#/components/responses/Status"}},
        ),
        "disable/": ("Disable the user: no sign-in, seat freed, links dead.", "Empty", _STATUS),
        "reactivate/": (
            "Give a disabled user access back (a new invitation if they never activated).",
            "Empty",
            _STATUS,
        ),
        "reinvite/": ("Send an unconfirmed user a new invitation.", "Empty", _STATUS),
        "delete/": ("Remove the portal user for good (the contact stays).", "Empty", _STATUS),
        "reset-password/": ("Email the user a password reset link.", "Empty", _STATUS),
        "change-role/": (
            "Give the user another active role; a role of another user type changes the "
            "user's type and takes that type's license (409 when none is left).",
            "Role",
            _STATUS,
        ),
        "access-end/": (
            "Set the user's access end date (a day after today), or clear it with null.",
            "AccessEnd",
            _STATUS,
        ),
        "magic-link/": (
            "A one-time sign-in link to hand over yourself.",
            "Target",
            {"200": _json("The link; it exists only in this answer.", _ref("MagicLink"))},
        ),
        "send-login-email/": (
            "Email the user a one-click sign-in link.",
            "Target",
            {"202": _json("The email is queued.", _ref("PortalUserStatus"))},
        ),
    }
    paths = {
        _PORTAL_USER: {
            "get": {
                "summary": "The contact's portal user, the actions allowed now, and the roles.",
                "description": _needs("read"),
                "responses": _responses(_STATUS, "401", "403", "404", "405"),
            }
        }
    }
    for action, (summary, body, ok) in actions.items():
        paths[_PORTAL_USER + action] = _post(
            summary, body, ok, scope="full", body_required=body == "Role"
        )
    return paths


def _paths():
    return {
        "/openapi.json": {
            "get": {
                "summary": "This schema.",
                "security": [],
                "responses": _responses({"200": _json("OpenAPI 3.1", {"type": "object"})}, "405"),
            }
        },
        _SYNC + "upsert/": _sync(
            "Create or update contacts (by contact id, else Salesforce id, 15 characters "
            "accepted; else a live contact the console created with the same email, adopted by "
            "the first item naming it). All or nothing; the same batch again changes nothing.",
            "UpsertContacts",
            "UpsertResult",
        ),
        _SYNC + "delete/": _sync(
            "Soft-delete contacts (the CRM's recycle bin): their portal users cannot sign in.",
            "ContactRefs",
            "DeleteResult",
        ),
        _SYNC + "restore/": _sync("Restore soft-deleted contacts.", "ContactRefs", "RestoreResult"),
        _SYNC + "merge/": _sync(
            "Merge each loser into its winner, in order; the winner keeps or takes the portal "
            "user (both having one is an error of the item).",
            "MergeContacts",
            "MergeResult",
        ),
        **_portal_user_paths(),
    }


_PARAMETERS = [
    {"name": "slug", "in": "path", "required": True, "schema": _STRING},
    {
        "name": "contact_ref",
        "in": "path",
        "required": True,
        "description": "The contact's 19-character contact id, or its 15- or 18-character "
        "Salesforce id.",
        "schema": _STRING,
    },
]


_WEBHOOK_USER = _object(
    {
        "id": {"type": "integer"},
        "email": _STRING,
        "name": _STRING,
        "state": {"enum": ["unconfirmed", "enabled", "disabled", "deleted"]},
        "role": _nullable(_STRING),
        "user_type": _nullable({"enum": ["partner", "customer", "employee"]}),
        "is_account_admin": {"type": "boolean"},
        "contact_id": _nullable(_CONTACT_ID),
        "salesforce_id": _nullable({**_SALESFORCE_ID, "description": "18 characters"}),
    },
    ["id", "email", "name", "state", "role", "user_type", "is_account_admin"]
    + ["contact_id", "salesforce_id"],
    description="The user as the change left them ('deleted' once deleted). contact_id and "
    "salesforce_id are their CRM contact's (null for employees, and for a contact without a "
    "Salesforce id).",
)
_WEBHOOK_IMPORT = _object(
    {
        "id": {"type": "integer"},
        "target": {"enum": ["portal_users", "contacts"]},
        "status": {"enum": ["done", "failed"]},
        "file_name": _STRING,
        "total_rows": _COUNT,
        "processed": _COUNT,
        "created": _COUNT,
        "failed": _COUNT,
        "started_at": _nullable(_DATE_TIME),
        "finished_at": _nullable(_DATE_TIME),
        "error": _nullable(_STRING),
    },
    ["id", "target", "status", "file_name", "total_rows", "processed", "created", "failed"]
    + ["started_at", "finished_at", "error"],
)
_WEBHOOK_DATA = {
    EventType.USER_ROLE_CHANGED: _object(
        {
            "user": _ref("WebhookUser"),
            "previous": _object(
                {"role": _nullable(_STRING), "user_type": _nullable(_STRING)},
                ["role", "user_type"],
            ),
        },
        ["user", "previous"],
    ),
    EventType.USER_SIGNED_IN: _object(
        {
            "user": _ref("WebhookUser"),
            "sign_in": _object(
                {
                    "door": {"enum": ["portal", "console", "support_admin"]},
                    "method": {
                        **_STRING,
                        "description": "password, code, magic_link, link, activation_link, "
                        "reset_link, or empty",
                    },
                },
                ["door", "method"],
            ),
        },
        ["user", "sign_in"],
    ),
    EventType.USER_EMAIL_BOUNCED: _object(
        {
            "user": _ref("WebhookUser"),
            "bounce": _object(
                {
                    "email": {
                        **_STRING,
                        "description": "The address the mail server refused for good; the "
                        "console shows it as undeliverable until the user's email changes.",
                    },
                    "reply": {**_STRING, "description": "The mail server's 5xx reply."},
                },
                ["email", "reply"],
            ),
        },
        ["user", "bounce"],
    ),
    EventType.IMPORT_FINISHED: _object({"import": _ref("WebhookImport")}, ["import"]),
}
_WEBHOOK_HEADERS = [
    (
        "webhook-id",
        "The event id (the payload's id): the same on every retry and redelivery, "
        "so a receiver drops repeats by it.",
    ),
    (
        "webhook-timestamp",
        "When this attempt was signed, in Unix seconds; refuse one more than "
        "5 minutes from your clock.",
    ),
    (
        "webhook-signature",
        "Space-separated 'v1,<base64>' signatures: HMAC-SHA256 of "
        "'<webhook-id>.<webhook-timestamp>.<raw body>' keyed with the base64-decoded part of the "
        "endpoint's whsec_ secret (two during a secret rotation). See the README.",
    ),
]


def _webhook(event_type):
    data = _WEBHOOK_DATA.get(event_type, _object({"user": _ref("WebhookUser")}, ["user"]))
    payload = _object(
        {
            "id": {**_STRING, "pattern": "^evt_[0-9a-f]{32}$"},
            "type": {"const": str(event_type)},
            "occurred_at": _DATE_TIME,
            "portal_account": {**_STRING, "description": "The portal account's slug."},
            "data": data,
        },
        ["id", "type", "occurred_at", "portal_account", "data"],
    )
    return {
        "post": {
            "summary": event_type.label,
            "description": "POSTed to every active endpoint of the portal account subscribed to "
            f"{event_type}, by the worker after the change has committed. Any 2xx answer "
            "delivers it; anything else (or no answer within 5 seconds) is tried again with "
            "exponential backoff, about 2 hours in all. Redirects are not followed.",
            "parameters": [
                {"name": name, "in": "header", "required": True, "description": text}
                | {"schema": _STRING}
                for name, text in _WEBHOOK_HEADERS
            ],
            "requestBody": {"required": True, "content": {"application/json": {"schema": payload}}},
            "responses": {"2XX": {"description": "Received: the delivery is done."}},
        }
    }


WEBHOOK_SCHEMAS = {"WebhookUser": _WEBHOOK_USER, "WebhookImport": _WEBHOOK_IMPORT}


def build():
    paths = _paths()
    for route, operations in paths.items():
        used = [p for p in _PARAMETERS if "{" + p["name"] + "}" in route]
        if used:
            operations["parameters"] = used
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Portal Admin CRM API",
            "version": "1",
            "description": "Contact sync and portal-user actions for one portal account, "
            "with that account's API token (Authorization: Bearer <token>). Another account's "
            "slug or contact is a 404. A token's scope limits what it may call: 'sync' the "
            "contact sync, 'read' the portal-user look-up, 'full' everything; another endpoint "
            "is a 403.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "webhooks": {str(event_type): _webhook(event_type) for event_type in EventType},
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from the portal account's API tokens page.",
                }
            },
            "schemas": {**SCHEMAS, **WEBHOOK_SCHEMAS},
            "responses": RESPONSES,
        },
    }


SCHEMA = build()


@csrf_exempt  # no cookies, no change: other methods get the API's JSON 405, not a CSRF page
@allow("GET")
def schema_view(request):
    return JsonResponse(SCHEMA)
