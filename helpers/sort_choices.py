"""The options of a list's "Sort by" select. On a phone a list shows cards without column
headers, so the sort the headers offer is a select in the list's search form instead (a plain
GET form: it works without JavaScript and under the CSP)."""

from typing import NamedTuple


class SortChoice(NamedTuple):
    value: str  # the URL's sort parameter: the key, "-" first for the reverse order
    label: str
    selected: bool


def both_directions(keys, labels, current, *, dates=()):
    """Each of `keys` in both directions, labelled from `labels` ({key: column label}): a date
    newest first, then oldest first; any other column A to Z, then Z to A."""
    choices = []
    for key in keys:
        if key in dates:
            directions = ((f"-{key}", "newest first"), (key, "oldest first"))
        else:
            directions = ((key, "A to Z"), (f"-{key}", "Z to A"))
        choices += [
            SortChoice(value, f"{labels[key]}, {order}", value == current)
            for value, order in directions
        ]
    return choices
