"""Salesforce record ids: 15-character (case-sensitive) ids and their 18-character
(case-insensitive) form with the three-character checksum suffix."""

import re

_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID = re.compile(r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$")


class InvalidSalesforceId(ValueError):
    pass


def checksum_suffix(id15):
    """Each 5-character chunk gives one suffix character: bit i is set when character i of the
    chunk is an upper-case letter."""
    suffix = ""
    for start in range(0, 15, 5):
        chunk = id15[start : start + 5]
        index = sum(1 << bit for bit, char in enumerate(chunk) if "A" <= char <= "Z")
        suffix += _SUFFIX_ALPHABET[index]
    return suffix


def to_18(salesforce_id):
    """Return the 18-character form of a 15- or 18-character id (18-character ids are returned
    with their own suffix, after checking it)."""
    value = (salesforce_id or "").strip()
    if not _ID.match(value):
        raise InvalidSalesforceId(
            f"'{value}' is not a Salesforce id: expected 15 or 18 letters and digits."
        )
    expected = value[:15] + checksum_suffix(value[:15])
    if len(value) == 18 and value[15:].upper() != expected[15:]:
        raise InvalidSalesforceId(f"'{value}' has a wrong checksum; check it was copied whole.")
    return expected


def looks_like_salesforce_id(value):
    return bool(_ID.match(value or ""))
