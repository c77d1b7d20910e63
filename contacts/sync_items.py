"""Reading and matching the items of a CRM sync batch (contacts.sync applies them): each item
is checked on its own first, then against the portal account's contacts, and every problem is
kept with the item's index so that a refused batch lists them all.

A contact is named by its contact_id (19 letters and digits) and/or its salesforce_id (15 or 18
characters, kept as 18); both given must name the same contact, and a batch names each contact
once."""

import re
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Q

from contacts.models import CONTACT_ID_LENGTH, Contact
from contacts.salesforce_ids import InvalidSalesforceId, to_18
from helpers.email_addresses import validate_header_safe
from helpers.one_line_text import one_line

MAX_ITEMS = 1000
UPSERT_FIELDS = ("contact_id", "salesforce_id", "name", "email", "crm_account_name")
REF_FIELDS = ("contact_id", "salesforce_id")

_CONTACT_ID = re.compile(rf"^[A-Za-z0-9]{{{CONTACT_ID_LENGTH}}}$")
_MAX_LENGTH = {
    name: Contact._meta.get_field(name).max_length for name in ("name", "email", "crm_account_name")
}


class InvalidBatch(Exception):
    """Some items cannot be applied, so none was. `errors`: [{"index", "field", "message"}]."""

    def __init__(self, errors, message=""):
        self.errors = errors
        count = len({error["index"] for error in errors})
        are = "items are" if count > 1 else "item is"
        self.message = message or f"Nothing was applied: {count} {are} invalid."
        super().__init__(self.message)


class ItemErrors(list):
    def add(self, index, field_name, message):
        self.append({"index": index, "field": field_name, "message": message})


@dataclass
class SyncResult:
    counts: dict
    results: list = field(default_factory=list)

    def add(self, index, contact, outcome, **extra):
        self.counts[outcome] += 1
        self.results.append(
            {
                "index": index,
                "contact_id": contact.contact_id,
                "salesforce_id": contact.salesforce_id,
                "outcome": outcome,
                **extra,
            }
        )

    def as_json(self):
        return {**self.counts, "results": self.results}


# --- reading items ---


class Refused(Exception):
    """One item's error, raised where it is found and added to the batch's errors."""

    def __init__(self, field_name, message):
        super().__init__(message)
        self.field_name = field_name
        self.message = message


def _path(prefix, name):
    return f"{prefix}.{name}" if prefix else name


def _storable(value):
    """Whether the database can store the text: PostgreSQL refuses NUL characters, and neither
    database takes a lone surrogate (half of a UTF-16 pair, which JSON's \\u escapes can
    carry), since it is no character UTF-8 can encode."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(item, name, *, required=False):
    """The field's value stripped; None when it is absent or null."""
    value = item.get(name)
    if value is None:
        if required:
            raise Refused(name, f"'{name}' is required.")
        return None
    if not isinstance(value, str):
        raise Refused(name, f"'{name}' must be a string.")
    if not _storable(value):
        raise Refused(
            name,
            f"'{name}' holds a character that cannot be stored (a NUL or an unpaired "
            "surrogate): send plain text.",
        )
    value = value.strip()
    if required and not value:
        raise Refused(name, f"'{name}' is required: it cannot be empty.")
    limit = _MAX_LENGTH.get(name)
    if limit and len(value) > limit:
        raise Refused(name, f"'{name}' has {len(value)} characters; at most {limit} fit.")
    return value


def _object(item, allowed, prefix=""):
    if not isinstance(item, dict):
        what = f"'{prefix}'" if prefix else "Each item"
        raise Refused(prefix or None, f"{what} must be a JSON object.")
    unknown = sorted(set(item) - set(allowed))
    if unknown:
        raise Refused(
            _path(prefix, unknown[0]),
            f"Unknown field '{unknown[0]}': expected {', '.join(allowed)}.",
        )
    return item


@dataclass
class Ref:
    contact_id: str | None
    salesforce_id: str | None  # 18 characters

    def field_name(self, prefix=""):
        return _path(prefix, "contact_id" if self.contact_id else "salesforce_id")


def _ids(item, prefix=""):
    """The item's contact_id and salesforce_id (18 characters), checked; None when absent."""
    try:
        contact_id = _text(item, "contact_id") or None
        raw = _text(item, "salesforce_id") or None
    except Refused as refused:
        raise Refused(_path(prefix, refused.field_name), refused.message) from None
    if contact_id and not _CONTACT_ID.match(contact_id):
        raise Refused(
            _path(prefix, "contact_id"),
            f"'{contact_id}' is not a contact id: expected {CONTACT_ID_LENGTH} letters and digits.",
        )
    try:
        salesforce_id = to_18(raw) if raw else None
    except InvalidSalesforceId as error:
        raise Refused(_path(prefix, "salesforce_id"), str(error)) from None
    return contact_id, salesforce_id


def ref_item(item, prefix=""):
    contact_id, salesforce_id = _ids(_object(item, REF_FIELDS, prefix), prefix)
    if not contact_id and not salesforce_id:
        raise Refused(prefix or None, "Name the contact with its contact_id or salesforce_id.")
    return Ref(contact_id, salesforce_id)


@dataclass
class UpsertRow(Ref):
    index: int = 0
    values: dict = field(default_factory=dict)  # name, and email / crm_account_name if sent


def upsert_item(index, item):
    item = _object(item, UPSERT_FIELDS)
    contact_id, salesforce_id = _ids(item)
    # Names go into emails and CSV downloads as one line (helpers.one_line_text).
    values = {"name": one_line(_text(item, "name", required=True))}
    if not values["name"]:
        raise Refused("name", "'name' is required: it cannot be empty.")
    for name in ("email", "crm_account_name"):
        if name in item:
            values[name] = _text(item, name) or ""
    if "crm_account_name" in values:
        values["crm_account_name"] = one_line(values["crm_account_name"])
    if values.get("email"):
        values["email"] = values["email"].lower()
        try:
            validate_email(values["email"])
            validate_header_safe(values["email"])
        except ValidationError:
            raise Refused("email", f"'{item['email']}' is not a valid email address.") from None
    if not contact_id and not salesforce_id:
        raise Refused(
            "contact_id",
            "Send the contact's contact_id or salesforce_id, so that the next sync finds it.",
        )
    return UpsertRow(contact_id, salesforce_id, index, values)


def read_items(items, read, errors):
    """[(index, read(index, item))] of the items `read` accepts; the others' errors added."""
    accepted = []
    for index, item in enumerate(items):
        try:
            accepted.append((index, read(index, item)))
        except Refused as refused:
            errors.add(index, refused.field_name, refused.message)
    return accepted


# --- finding contacts ---


def ids_condition(refs):
    """The contacts any of the refs names, by contact_id or by salesforce_id."""
    contact_ids = {ref.contact_id for ref in refs if ref.contact_id}
    salesforce_ids = {ref.salesforce_id for ref in refs if ref.salesforce_id}
    return Q(contact_id__in=contact_ids) | Q(salesforce_id__in=salesforce_ids)


def locked_contacts(account, condition):
    return list(
        Contact.objects.select_for_update().filter(condition, portal_account=account).order_by("pk")
    )


class Found:
    """The batch's contacts by contact id and by Salesforce id."""

    def __init__(self, contacts):
        self.contacts = contacts
        self.by_contact_id = {contact.contact_id: contact for contact in contacts}
        self.by_salesforce_id = {c.salesforce_id: c for c in contacts if c.salesforce_id}

    @classmethod
    def locked(cls, account, refs):
        return cls.locked_where(account, ids_condition(refs))

    @classmethod
    def locked_where(cls, account, condition):
        return cls(locked_contacts(account, condition))

    def match(self, ref, prefix=""):
        """The contact the ids of `ref` name, or None; refuses ids naming two contacts."""
        by_id = self.by_contact_id.get(ref.contact_id) if ref.contact_id else None
        by_sf = self.by_salesforce_id.get(ref.salesforce_id) if ref.salesforce_id else None
        stored = by_id.salesforce_id if by_id is not None else None
        if stored and ref.salesforce_id and stored != ref.salesforce_id:
            raise Refused(
                _path(prefix, "salesforce_id"),
                f"The contact_id '{ref.contact_id}' is {by_id.name}, whose Salesforce id is "
                f"{by_id.salesforce_id}, not {ref.salesforce_id}.",
            )
        if by_sf is not None and ref.contact_id and by_sf.contact_id != ref.contact_id:
            raise Refused(
                _path(prefix, "contact_id"),
                f"The salesforce_id '{ref.salesforce_id}' is {by_sf.name}, whose contact_id is "
                f"{by_sf.contact_id}, not '{ref.contact_id}'.",
            )
        return by_id or by_sf

    def get(self, ref, prefix=""):
        """The contact `ref` names; refuses one that is not there."""
        contact = self.match(ref, prefix)
        if contact is None:
            key = "contact_id" if ref.contact_id else "salesforce_id"
            raise Refused(
                ref.field_name(prefix),
                f"No contact with the {key} '{getattr(ref, key)}' in this portal account.",
            )
        return contact


class Once:
    """Refuses an item naming a contact (by an id, or by matching it) an earlier item named."""

    def __init__(self):
        self.seen = {}

    def check(self, index, ref, contact, prefix=""):
        keys = {("cid", ref.contact_id), ("sf", ref.salesforce_id)}
        if contact is not None:
            keys.add(("pk", contact.pk))
        keys = {key for key in keys if key[1]}
        earlier = sorted(self.seen[key] for key in keys if key in self.seen)
        if earlier:
            raise Refused(
                ref.field_name(prefix),
                f"Item {earlier[0]} names this contact already: send each contact once a batch.",
            )
        for key in keys:
            self.seen[key] = index


def merge_item(index, item):
    item = _object(item, ("winner", "loser"))
    return ref_item(item.get("winner"), "winner"), ref_item(item.get("loser"), "loser")


def check_size(items):
    if len(items) > MAX_ITEMS:
        raise InvalidBatch(
            [],
            f"Nothing was applied: a batch holds at most {MAX_ITEMS} items, this one "
            f"{len(items)}. Send it in parts.",
        )


def raise_if(errors):
    if errors:
        raise InvalidBatch(sorted(errors, key=lambda error: error["index"]))
