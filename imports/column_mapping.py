"""Map stage of the CSV import: which column of the file holds which field of the target.

A mapping is a plain dict `{field name: column index or None}`, so it can be stored as JSON on
the import job. Columns are matched by their header ignoring case, spaces, `_` and `-`
("ContactId", "contact id", "Contact_ID" and " CONTACT-ID " are all the same); columns that no
field claims are ignored. When the header does not say, the wizard lets people pick columns by
hand (`manual_map`).
"""

from dataclasses import dataclass, replace
from functools import partial
from operator import itemgetter

from imports.csv_reader import column_letter


@dataclass(frozen=True)
class Field:
    name: str  # key in the mapping and in the row values handed to validation
    label: str  # the header we ask for, as written in the template
    required: bool = True
    noun: str = ""  # how messages refer to the values: "pick which column holds the {noun}"
    aliases: tuple[str, ...] = ()  # other headers that mean this field
    # An optional field added after mappings were saved: in a mapping only when a column holds
    # it, so the mappings of files without it (and of jobs saved before it) stay as they were.
    only_when_mapped: bool = False

    def keys(self):
        return {_normalise(self.name), _normalise(self.label), *map(_normalise, self.aliases)}


PORTAL_USER_FIELDS = (
    Field("contact_id", "ContactId", noun="contact id"),
    Field("role", "Role", noun="role"),
    # Optional: the day the user's access ends (accounts.expiry), as YYYY-MM-DD.
    Field(
        "access_ends_on",
        "AccessEndsOn",
        required=False,
        noun="access end date",
        aliases=("AccessEnd", "AccessEndDate", "EndDate"),
        only_when_mapped=True,
    ),
)

# The same fields when the import has a default role (a role for rows without one,
# imports.portal_users): a file may then have no Role column at all.
PORTAL_USER_FIELDS_WITH_DEFAULT_ROLE = tuple(
    replace(field, required=False) if field.name == "role" else field
    for field in PORTAL_USER_FIELDS
)

# Contacts target (imports.contacts_import). Headers match ignoring case, spaces, "_" and "-", so
# the shared sample's snake_case `contact_id`, `salesforce_id` and `crm_account` map too.
CONTACT_FIELDS = (
    Field("contact_id", "ContactId", required=False, noun="contact id"),
    Field(
        "salesforce_id",
        "SalesforceId",
        required=False,
        noun="Salesforce id",
        aliases=("Salesforce", "SfId"),
    ),
    Field("name", "Name", noun="contact name", aliases=("FullName", "ContactName")),
    Field("email", "Email", required=False, noun="email address", aliases=("EmailAddress",)),
    Field(
        "crm_account",
        "Account",
        required=False,
        noun="CRM account name",
        aliases=("CrmAccount", "AccountName", "CrmAccountName"),
    ),
)


class MappingError(ValueError):
    """The columns cannot be mapped; `messages` are meant for the person importing."""

    def __init__(self, messages):
        super().__init__(" ".join(messages))
        self.messages = list(messages)


def auto_map(header, fields):
    """Map each field to the one column whose header matches it, or to None when no column (or
    more than one) matches."""
    mapping = {}
    for field in fields:
        matches = _matching_columns(header, field)
        column = matches[0] if len(matches) == 1 else None
        if column is not None or not field.only_when_mapped:
            mapping[field.name] = column
    return mapping


def manual_map(choices, header, fields):
    """Apply the wizard's choices on top of the automatic mapping.

    `choices` maps field names to a column, given as its header text (matched exactly, then
    ignoring case and surrounding spaces) or its 0-based index; None or "" means "no column".
    Fields not in `choices` keep their automatic column. Raises MappingError for a column or
    field that does not exist; call `validate_mapping` on the result for everything else.
    """
    by_name = {field.name: field for field in fields}
    mapping = auto_map(header, fields)
    errors = []
    for name, choice in choices.items():
        if name not in by_name:
            errors.append(f"There is no field '{name}' to map.")
        elif choice is None or choice == "":
            if by_name[name].only_when_mapped:
                mapping.pop(name, None)
            else:
                mapping[name] = None
        elif isinstance(choice, int):
            if 0 <= choice < len(header):
                mapping[name] = choice
            else:
                errors.append(
                    f"There is no column {column_letter(choice)} in the file "
                    f"(it has {len(header)} columns). {_pick_from(header)}"
                )
        else:
            index = _column_named(header, choice)
            if index is None:
                errors.append(f"There is no column named '{choice}'. {_pick_from(header)}")
            else:
                mapping[name] = index
    if errors:
        raise MappingError(errors)
    return mapping


def validate_mapping(mapping, header, fields):
    """Plain messages for everything wrong with `mapping`; an empty list means it can be used."""
    errors = []
    names = {field.name for field in fields}
    errors += [f"There is no field '{name}' to map." for name in mapping if name not in names]
    used = {}
    for field in fields:
        index = mapping.get(field.name)
        if index is None:
            if field.required:
                errors.append(_missing_message(header, field))
        elif not isinstance(index, int) or not 0 <= index < len(header):
            errors.append(
                f"The {field.label} column is set to a column the file does not have "
                f"({index!r}). {_pick_from(header)}"
            )
        else:
            used.setdefault(index, []).append(field)
    for index, claimed in used.items():
        if len(claimed) > 1:
            labels = " and ".join(field.label for field in claimed)
            errors.append(
                f"Column {column_letter(index)} ('{header[index]}') is picked for both {labels}. "
                "Pick a different column for one of them."
            )
    return errors


def map_columns(header, fields, choices=None):
    """The mapping to import with: automatic, plus `choices` when given. Raises MappingError."""
    mapping = manual_map(choices or {}, header, fields)
    errors = validate_mapping(mapping, header, fields)
    if errors:
        raise MappingError(errors)
    return mapping


def row_values(mapping, cells):
    """`{field name: cell}` for one row; unmapped fields and missing cells give ""."""
    return {
        name: cells[index] if index is not None and index < len(cells) else ""
        for name, index in mapping.items()
    }


def row_reader(mapping):
    """`row_values` for the million rows of one file: a function of the cells that gives the
    same dict, built by C code (an itemgetter) for the mapped fields; an optional field left
    unmapped is "" on every row."""
    mapped = {name: index for name, index in mapping.items() if index is not None}
    unmapped = {name: "" for name, index in mapping.items() if index is None}
    indices = list(mapped.values())
    if not indices:
        return partial(row_values, mapping)
    names, needed = list(mapped), max(indices) + 1
    getter = itemgetter(*indices) if len(indices) > 1 else lambda cells: (cells[indices[0]],)

    def read(cells):
        if len(cells) < needed:
            return row_values(mapping, cells)
        values = dict(zip(names, getter(cells), strict=True))
        if unmapped:
            values.update(unmapped)
        return values

    return read


def _normalise(text):
    return "".join(text.split()).replace("_", "").replace("-", "").casefold()


def _matching_columns(header, field):
    keys = field.keys()
    return [index for index, cell in enumerate(header) if cell and _normalise(cell) in keys]


def _column_named(header, name):
    if name in header:
        return header.index(name)
    wanted = name.strip().casefold()
    matches = [index for index, cell in enumerate(header) if cell.casefold() == wanted]
    return matches[0] if len(matches) == 1 else None


def _missing_message(header, field):
    noun = field.noun or field.label
    matches = _matching_columns(header, field)
    if len(matches) > 1:
        columns = _and_list([f"{column_letter(index)} ('{header[index]}')" for index in matches])
        each = "both" if len(matches) == 2 else "all"
        return (
            f"Columns {columns} {each} look like the {field.label} column. "
            f"Remove or rename all but one, or pick which column holds the {noun}."
        )
    return (
        f"No {field.label} column. Add a column named {field.label}, "
        f"or pick which column holds the {noun}."
    )


def _and_list(items):
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _pick_from(header):
    names = ", ".join(cell for cell in header if cell)
    return f"Pick one of: {names}."
