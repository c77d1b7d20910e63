"""The OpenAPI 3.1 schema of /api/v1/ (contact sync and portal-user API), served at
/api/v1/openapi.json without a token. Written by hand next to the views it describes;
tests/test_api_schema.py keeps the two in step (every URL described, every answer documented,
every body as described)."""

from django.http import JsonResponse

from accounts.lifecycle import PORTAL_SECTIONS
from api.portal_user_views import allow


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
_COUNT = {"type": "integer", "minimum": 0}
_HEADER = {"schema": _STRING}


def _object(properties, required=(), **extra):
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return {**schema, **extra}


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
            "field": _STRING,
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
        },
        ["id", "state", "user_type", "role", "email", "is_account_admin"]
        + ["invited_at", "activated_at", "last_login"],
    ),
    "PortalUserStatus": _object(
        {
            "contact": _ref("Contact"),
            "portal_user": {"oneOf": [{"type": "null"}, _ref("PortalUser")]},
            "allowed_actions": {
                "type": "array",
                "description": "The actions the rules allow now; each is a POST to "
                ".../portal-user/<action>/.",
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
                "description": "The account's active roles, to pick from.",
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
            "user_type": _nullable({"type": "string", "enum": ["partner", "customer"]}),
            "send_invitation": _nullable({"type": "boolean", "default": True}),
        },
        ["role"],
    ),
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
    # The contact sync (api/sync_views.py).
    "UpsertContacts": _object(
        {
            "contacts": {
                "type": "array",
                "maxItems": 1000,
                "items": _object(
                    {
                        "contact_id": _STRING,
                        "salesforce_id": _STRING,
                        "name": _STRING,
                        "email": _STRING,
                        "crm_account_name": _STRING,
                    },
                    ["name"],
                ),
            }
        },
        ["contacts"],
    ),
    "ContactRefs": _object(
        {
            "contacts": {
                "type": "array",
                "maxItems": 1000,
                "items": {
                    "oneOf": [
                        _object({"contact_id": _STRING}, ["contact_id"]),
                        _object({"salesforce_id": _STRING}, ["salesforce_id"]),
                    ]
                },
            }
        },
        ["contacts"],
    ),
    "MergeContacts": _object(
        {
            "merges": {
                "type": "array",
                "maxItems": 1000,
                "items": _object(
                    {
                        "winner": {**_STRING, "description": "Contact id or Salesforce id."},
                        "loser": {**_STRING, "description": "Contact id or Salesforce id."},
                    },
                    ["winner", "loser"],
                ),
            }
        },
        ["merges"],
    ),
    "SyncResult": {
        "type": "object",
        "description": "How many items had each outcome, and each item's outcome in order.",
        "properties": {
            "results": {
                "type": "array",
                "items": _object(
                    {
                        "index": _COUNT,
                        "contact_id": _STRING,
                        "salesforce_id": _nullable(_STRING),
                        "outcome": _STRING,
                    },
                    ["index", "contact_id", "salesforce_id", "outcome"],
                ),
            }
        },
        "additionalProperties": _COUNT,
        "required": ["results"],
    },
}

RESPONSES = {
    "BadRequest": _error(
        "The body cannot be used: not JSON, wrong or unknown fields, an unknown or inactive "
        "role. Nothing was changed."
    ),
    "Unauthorized": _error("Missing, unknown or revoked API token.", {"WWW-Authenticate": _HEADER}),
    "NotFound": _error("No such portal account or contact within this token's reach."),
    "MethodNotAllowed": _error("Another method is expected here.", {"Allow": _HEADER}),
    "Conflict": _error(
        "The rules refuse the action now (the user's state, a deleted contact, no licenses "
        "left). Nothing was changed."
    ),
    "Status": _json("The contact's portal access now.", _ref("PortalUserStatus")),
}


def _responses(ok, *codes):
    names = {
        "400": "BadRequest",
        "401": "Unauthorized",
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


def _post(summary, body, ok, *, body_required=False, codes=("400", "401", "404", "405", "409")):
    return {
        "post": {
            "summary": summary,
            "requestBody": _body(body, body_required),
            "responses": _responses(ok, *codes),
        }
    }


_STATUS = {"200": {"$ref": "#/components/responses/Status"}}
_PORTAL_USER = "/accounts/{slug}/contacts/{contact_ref}/portal-user/"
_SYNC = "/accounts/{slug}/contacts/"
_SYNC_OK = {"200": _json("Every item applied (or already so).", _ref("SyncResult"))}


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
        "change-role/": ("Give the user another active role.", "Role", _STATUS),
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
                "responses": _responses(_STATUS, "401", "404", "405"),
            }
        }
    }
    for action, (summary, body, ok) in actions.items():
        paths[_PORTAL_USER + action] = _post(summary, body, ok, body_required=body == "Role")
    return paths


def _paths():
    sync_codes = ("400", "401", "404", "405")
    return {
        "/openapi.json": {
            "get": {
                "summary": "This schema.",
                "security": [],
                "responses": _responses({"200": _json("OpenAPI 3.1", {"type": "object"})}, "405"),
            }
        },
        _SYNC + "upsert/": _post(
            "Create or update contacts (by contact id, else Salesforce id; 15 characters "
            "accepted). All or nothing.",
            "UpsertContacts",
            _SYNC_OK,
            body_required=True,
            codes=sync_codes,
        ),
        _SYNC + "delete/": _post(
            "Soft-delete contacts (the CRM's recycle bin): their portal users cannot sign in.",
            "ContactRefs",
            _SYNC_OK,
            body_required=True,
            codes=sync_codes,
        ),
        _SYNC + "restore/": _post(
            "Restore soft-deleted contacts.",
            "ContactRefs",
            _SYNC_OK,
            body_required=True,
            codes=sync_codes,
        ),
        _SYNC + "merge/": _post(
            "Merge each loser into its winner; the winner keeps or takes the portal user.",
            "MergeContacts",
            _SYNC_OK,
            body_required=True,
            codes=sync_codes,
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
            "slug or contact is a 404.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from the portal account's API tokens page.",
                }
            },
            "schemas": SCHEMAS,
            "responses": RESPONSES,
        },
    }


SCHEMA = build()


@allow("GET")
def schema_view(request):
    return JsonResponse(SCHEMA)
