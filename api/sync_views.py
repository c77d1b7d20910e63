"""The contact sync endpoint a CRM connector calls: POST a batch of contacts to upsert, delete,
restore or merge in a portal account's mirror (contacts.sync applies it).

Every endpoint takes a JSON object with one list (at most 1,000 items) and answers 200 with the
counts and one result per item, in the items' order:

    {"created": 1, "updated": 0, "unchanged": 1,
     "results": [{"index": 0, "contact_id": "003...", "salesforce_id": "001...",
                  "outcome": "created"}, ...]}

A batch is all or nothing: if any item is invalid (or names an unknown contact) the answer is
400 with every item's errors and nothing is applied:

    {"error": "Nothing was applied: 2 items are invalid.",
     "errors": [{"index": 3, "field": "email", "message": "..."}]}

A field of the wrong type, an unknown field, or a contact named twice in one batch is an error
of its item. A batch that changes nothing writes nothing, so sending it again is safe. Other
answers: 400 for a body that is not a JSON object with that list, 401 without a live token, 403
for a token whose scope is neither "sync" nor "full", 404 for a portal account the token does
not belong to, 405 for anything but POST, 409 when another
request changed the same contacts at the same moment (send the batch again)."""

from django.http import JsonResponse

from api.authentication import api_view
from api.json_io import BadPayload, read_json_object
from api.models import ApiToken
from contacts import sync
from helpers.client_ip import client_ip

Scope = ApiToken.Scope


def _items(request, key):
    body = read_json_object(
        request,
        too_large_hint=(
            f"Send fewer items a request (at most {sync.MAX_ITEMS}), or shorter values."
        ),
    )
    unknown = sorted(set(body) - {key})
    if unknown:
        raise BadPayload(f"Unknown keys {', '.join(unknown)}: the body has only '{key}'.")
    items = body.get(key)
    if not isinstance(items, list):
        raise BadPayload(f"The body must have a '{key}' list, e.g. {{\"{key}\": [...]}}.")
    return items


def _apply(request, account, key, operation):
    result = operation(account, _items(request, key), by=None, ip=client_ip(request))
    return JsonResponse(result.as_json())


@api_view("POST", scope=Scope.SYNC)
def upsert_contacts(request, account):
    """Create or update contacts: {"contacts": [{"contact_id"?, "salesforce_id"?, "name",
    "email"?, "crm_account_name"?}, ...]}.

    Each item needs "name" and a "contact_id" (19 letters and digits) or a "salesforce_id" (15 or
    18 characters; answered in its 18-character form). It updates the contact with that
    contact_id, else that salesforce_id, else a live contact created in the console with the same
    email (which then takes the item's ids; the first item of a batch naming that email does);
    otherwise it creates one. A field left out is left
    as it is; null or "" clears an email or CRM account name. A deleted contact is updated and
    stays deleted. A portal user's name and email follow their contact's; an email another
    portal user of the account has is an error of the item. Counts: created, updated,
    unchanged; outcome per item: "created", "updated" or "unchanged"."""
    return _apply(request, account, "contacts", sync.upsert_contacts)


@api_view("POST", scope=Scope.SYNC)
def delete_contacts(request, account):
    """Delete contacts (soft: the CRM's recycle bin): {"contacts": [{"contact_id": "..."} or
    {"salesforce_id": "..."}, ...]}.

    A deleted contact's partner or customer portal user can no longer sign in until the contact
    is restored or the user is associated with another contact. Counts: deleted, unchanged;
    outcome per item: "deleted", or "unchanged" for a contact deleted already. An unknown
    contact is an error of its item."""
    return _apply(request, account, "contacts", sync.delete_contacts)


@api_view("POST", scope=Scope.SYNC)
def restore_contacts(request, account):
    """Restore deleted contacts: {"contacts": [{"contact_id": "..."} or {"salesforce_id":
    "..."}, ...]}.

    Their portal users can sign in again if their state allows it. Counts: restored, unchanged;
    outcome per item: "restored", or "unchanged" for a live contact. An unknown contact, or one
    merged into another contact, is an error of its item."""
    return _apply(request, account, "contacts", sync.restore_contacts)


@api_view("POST", scope=Scope.SYNC)
def merge_contacts(request, account):
    """Merge contacts as the CRM did: {"merges": [{"winner": {ref}, "loser": {ref}}, ...]}, a ref
    being {"contact_id": "..."} or {"salesforce_id": "..."}. Applied in order.

    The loser is deleted and remembers the winner; the winner keeps its portal user, or takes
    the loser's (whose name and email become the winner's). Errors of an item: both contacts
    have portal users, a contact merged into itself, a deleted winner, a loser merged into
    another contact already, an unknown contact. Counts: merged, unchanged; each result names
    the winner ("contact_id", "salesforce_id") and the "loser"; outcome "merged", or "unchanged"
    for a merge done before."""
    return _apply(request, account, "merges", sync.merge_contacts)
