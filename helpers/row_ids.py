"""Row ids as a form sends them ("ids" ticked in a list, a hidden email_id): only ASCII digits,
and few enough to fit a bigint. Not str.isdigit(): it says yes to "²", which int() refuses (a
500), and to ids past any column (an OverflowError on SQLite)."""

import re

_ID = re.compile(r"[0-9]{1,18}")


def row_id(value):
    """The id, or None for anything that is not one."""
    return int(value) if isinstance(value, str) and _ID.fullmatch(value) else None


def row_ids(values):
    """The ids among `values`, the rest dropped."""
    return [found for found in map(row_id, values) if found is not None]
