"""SQL for the CSV import's batches of thousands of rows: `insert` (PostgreSQL's COPY on
PostgreSQL, Django's `bulk_create` on other databases: SQLite, the embedded demo and the tests),
`insert_new` (an insert that skips the rows already there: the batch sender's tokens), `update`
(one UPDATE ... FROM a JSON parameter on PostgreSQL, `bulk_update` elsewhere) and `any_of` (a
lookup among thousands of values as one query parameter).

Why not `bulk_create` everywhere: on PostgreSQL, at 100,000 imported rows, most of the import's
time went to Django preparing every value of every object (`Model.__init__`, `pre_save`,
`get_db_prep_save`) and psycopg quoting each value into the SQL text (bench/imports.py, profiled).
COPY streams the rows and the server parses no SQL per row. The rows' text is built here a column
at a time (see `_copy_text`): the values that are the same in every row of a batch (most of an
import's columns) are formatted once, not once a row as psycopg's `write_row` does. An
`INSERT ... SELECT FROM unnest(arrays)` (what Django 5.2's bulk_create does) used as much
PostgreSQL time and more Python time: psycopg turns lists into arrays value by value in Python.

What stays the same as an INSERT: every constraint and trigger of the table applies, so a
unique violation (a concurrent import of the same contact) raises `IntegrityError` and the
caller's savepoint rolls the whole COPY back; foreign keys are checked (at commit: Django makes
them DEFERRABLE INITIALLY DEFERRED). COPY returns nothing, so the new ids, when the caller needs
them, are drawn from the table's sequence first (`nextval`, one query for the lot, safe with
concurrent inserts: about 0.5 us an id) and written with the rows. Reading them back by a key
instead was cheaper at first, then grew with the table: the outbox ids of a 5,000-row batch
took 84 ms on average to read back over a 1,000,000-row import, against 20 ms from the
sequence.

Columns the caller does not give get what `bulk_create` would give them: the field's default
(a callable one is called per row, except `dict` and `list`), the time of the call for
`auto_now` / `auto_now_add` dates; a field with a `db_default` is left to the database.
"""

import datetime
import json
import re
from functools import partial
from typing import NamedTuple

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection as default_connection
from django.db import connections, router
from django.db.models import JSONField
from django.db.models.expressions import RawSQL
from django.db.models.fields import NOT_PROVIDED
from django.utils import timezone

_SHARED_DEFAULTS = (dict, list)  # callables whose value is the same JSON for every row


def insert(model, fields, rows, *, returning_ids=False):
    """Insert `rows` into `model`'s table; return the new ids in row order with `returning_ids`,
    else None. Each row is a tuple of values for `fields` (attribute names, such as
    "contact_id"), in Python form: ints for foreign keys, str, datetime, bool, None, dict or list
    for JSON. Call it inside a transaction (atomic), so that a failure leaves nothing."""
    if not rows:
        return [] if returning_ids else None
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        objects = [model(**dict(zip(fields, row, strict=True))) for row in rows]
        model._base_manager.using(connection.alias).bulk_create(objects)
        return [obj.pk for obj in objects] if returning_ids else None
    copy = prepare_copy(model, fields, rows, returning_ids=returning_ids)
    write_copy(copy)
    return copy.ids


def copy_ahead_possible(model):
    """Whether `prepare_copy` works on `model`'s database: PostgreSQL only."""
    return connections[router.db_for_write(model)].vendor == "postgresql"


class PreparedCopy(NamedTuple):
    """A COPY made ready (by `prepare_copy`) to be written later, by `write_copy`, on another
    connection or in another thread: its statement, its text (or its rows, for psycopg to
    format) and the ids drawn for its rows (None unless asked for)."""

    model: type
    sql: str
    text: str | None
    rows: list | None
    ids: list | None


def prepare_copy(model, fields, rows, *, returning_ids=False):
    """Everything of `insert` but the writing, on PostgreSQL: the text of the rows, and their ids
    drawn from the table's sequence when asked for. Sequences are not transactional, so ids are
    drawn on whatever connection this runs on, and an id of a copy never written stays unused.
    The time columns left out (`auto_now_add`) are the time of this call."""
    connection = connections[router.db_for_write(model)]
    meta = model._meta
    by_attname = {field.attname: field for field in meta.concrete_fields}
    given = [by_attname[name] for name in fields]
    constant_fields, constants, per_row_defaults = _defaults(
        meta, fields, partial(_db_value, connection)
    )
    columns = [field.column for field in given]
    values = [*zip(*rows, strict=True)]  # a tuple per column
    for index, field in enumerate(given):
        if isinstance(field, JSONField):
            values[index] = _json_texts(field, values[index])
    for field in per_row_defaults:
        columns.append(field.column)
        values.append(tuple(_db_value(connection, field, field.get_default()) for _row in rows))
    columns += [field.column for field in constant_fields]
    values += [(value,) * len(rows) for value in constants]
    ids = None
    if returning_ids:
        with connection.cursor() as cursor, connection.wrap_database_errors:
            # One row of text, not a row per id: psycopg builds a tuple for each row it reads.
            # The sequence is looked up once: pg_get_serial_sequence a row took 20 ms of the
            # 23 ms that 5,000 ids cost.
            cursor.execute(
                "WITH sequence AS MATERIALIZED "
                "(SELECT pg_get_serial_sequence(%s, %s)::regclass AS name) "
                "SELECT string_agg(nextval(sequence.name)::text, ',') "
                "FROM sequence, generate_series(1, %s)",
                [meta.db_table, meta.pk.column, len(rows)],
            )
            ids = list(map(int, cursor.fetchone()[0].split(",")))
        columns.insert(0, meta.pk.column)
        values.insert(0, ids)
    columns, text = _copy_text(columns, values, len(rows))
    quote = connection.ops.quote_name
    sql = f"COPY {quote(meta.db_table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    rows_to_format = None if text is not None else list(zip(*values, strict=True))
    return PreparedCopy(model, sql, text, rows_to_format, ids)


def write_copy(copy):
    """Write a `prepare_copy` on this thread's connection (inside the caller's transaction)."""
    connection = connections[router.db_for_write(copy.model)]
    with (
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        cursor.copy(copy.sql) as writer,
    ):
        if copy.text is not None:
            writer.write(copy.text)
        else:
            for row in copy.rows:
                writer.write_row(row)


def _defaults(meta, fields, prepared):
    """What the columns that `fields` leave out get: `(constant fields, their values as
    `prepared(field, value)` makes them, fields with a default per row)`."""
    now = timezone.now()
    constant_fields, constants, per_row_defaults = [], [], []
    for field in meta.concrete_fields:
        if field.attname in fields or field.primary_key or field.db_default is not NOT_PROVIDED:
            continue
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            constant_fields.append(field)
            constants.append(prepared(field, now))
        elif field.has_default() and callable(field.default):
            if field.default in _SHARED_DEFAULTS:
                constant_fields.append(field)
                constants.append(prepared(field, field.get_default()))
            else:
                per_row_defaults.append(field)
        elif field.get_default() is not None:
            constant_fields.append(field)
            constants.append(prepared(field, field.get_default()))
        # else: left out of the COPY, the column is NULL (Django gives columns no database
        # default but db_default, skipped above); fewer values to format in every row.
    return constant_fields, tuple(constants), per_row_defaults


def insert_new(model, fields, rows):
    """`insert` of rows some of which may be there already: a row that would break a unique
    constraint is skipped, as `bulk_create(ignore_conflicts=True)` does; on PostgreSQL with one
    `INSERT ... SELECT FROM jsonb_to_recordset(...) ON CONFLICT DO NOTHING` (COPY cannot skip a
    row). For batches of hundreds: bulk_create built a model instance and prepared each value of
    each row, a third of the batch sender's claim (the claimed emails' tokens)."""
    if not rows:
        return
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        objects = [model(**dict(zip(fields, row, strict=True))) for row in rows]
        model._base_manager.using(connection.alias).bulk_create(objects, ignore_conflicts=True)
        return
    meta = model._meta
    by_attname = {field.attname: field for field in meta.concrete_fields}

    def prepared(field, value):
        # The records are JSON themselves: a JSON column's value goes in as it is, not as the
        # JSON text that COPY takes (it would be stored as a string).
        return value if isinstance(field, JSONField) else _db_value(connection, field, value)

    constant_fields, constants, per_row_defaults = _defaults(meta, fields, prepared)
    targets = [by_attname[name] for name in fields] + per_row_defaults + constant_fields
    names = [field.column for field in targets]

    def defaults():
        return tuple(prepared(field, field.get_default()) for field in per_row_defaults)

    records = [dict(zip(names, (*row, *defaults(), *constants), strict=True)) for row in rows]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in targets)
    record = ", ".join(
        f"{quote(field.column)} {_record_type(connection, field)}" for field in targets
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(meta.db_table)} ({columns}) SELECT {columns} "
            f"FROM jsonb_to_recordset(%s::jsonb) AS new({record}) ON CONFLICT DO NOTHING",
            [json.dumps(records, cls=_FullPrecision)],
        )


# COPY's text format: a tab between values, a newline after each row, \N for NULL, and these
# four characters escaped with a backslash.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r]")


def _copy_text(columns, values, count):
    """The rows as COPY text, built a column at a time: `(columns, text)`, the columns in the
    order of the text. A column with the same value in every row (most of them: the account, the
    actor, the time, the password of a batch) is turned into text once, and written after the
    others. psycopg's `write_row` formats every value of every row (in C, but value by value):
    at 100,000 imported rows that was a fifth of the import's time. `(columns, None)` when a value
    is of a type this does not write (psycopg then formats the rows)."""
    varying, same = [], []
    for column, column_values in zip(columns, values, strict=True):
        first = column_values[0]
        kinds = set(map(type, column_values))
        if count > 1 and len(kinds) == 1 and column_values.count(first) == count:
            same.append((column, first))
        else:
            varying.append((column, column_values))
    try:
        texts = [_column_text(column_values) for _column, column_values in varying]
        tail = "".join("\t" + _value_text(value) for _column, value in same)
    except TypeError:
        return columns, None
    end = tail + "\n"
    if not texts:  # every column alike: the tail without its leading tab, once a row
        return [column for column, _ in same], end[1:] * count
    text = end.join(map("\t".join, zip(*texts, strict=True))) + end
    return [column for column, _ in varying + same], text


def _column_text(values):
    kinds = set(map(type, values))
    if kinds == {int}:
        return list(map(str, values))
    if kinds == {str}:
        if _NEEDS_ESCAPE.search("".join(values)) is None:
            return values
        return [value.translate(_COPY_ESCAPES) for value in values]
    return [_value_text(value) for value in values]


def _value_text(value):
    kind = type(value)
    if value is None:
        return "\\N"
    if kind is str:
        return value.translate(_COPY_ESCAPES)
    if kind is bool:
        return "t" if value else "f"
    if isinstance(value, int):  # psycopg's Int2 for a small integer field, say
        return str(int(value))
    if kind in (datetime.datetime, datetime.date):
        return value.isoformat()
    raise TypeError(f"No COPY text for {kind.__name__}")


def _json_texts(field, values):
    """A JSON column's values as JSON text, each object dumped once: rows often share one."""
    dumped = {}  # id(value) -> (value, JSON text); the value kept so that its id stays its own

    def to_json(value):
        if value is None:
            return None
        key = id(value)
        if key not in dumped:
            dumped[key] = (value, json.dumps(value, cls=field.encoder))
        return dumped[key][1]

    return tuple(map(to_json, values))


def _db_value(connection, field, value):
    if isinstance(field, JSONField):
        return None if value is None else json.dumps(value, cls=field.encoder)
    value = field.get_db_prep_save(value, connection)
    # Choices are str subclasses; COPY wants the plain value.
    return str(value) if isinstance(value, str) and type(value) is not str else value


class _FullPrecision(DjangoJSONEncoder):
    """DjangoJSONEncoder, but times keep their microseconds (it cuts them to milliseconds, as
    JavaScript's dates do): what goes into a column must come back as it was."""

    def default(self, o):
        if isinstance(o, datetime.datetime | datetime.time):
            return o.isoformat()
        return super().default(o)


def update(model, objects, fields):
    """Save `fields` (attribute names; no JSON fields) of `objects`, model instances already in
    the database, like `bulk_update`; on PostgreSQL with one `UPDATE ... FROM
    jsonb_to_recordset(...)`. Django's `bulk_update` writes a `CASE WHEN id = ... THEN ...` per
    field with a branch per object, which takes it longer to build than the database takes to
    run (a contacts import spent three quarters of its time there)."""
    if not objects:
        return
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        model._base_manager.using(connection.alias).bulk_update(objects, fields)
        return
    meta = model._meta
    targets = [meta.pk, *(meta.get_field(name) for name in fields)]
    data = json.dumps(
        [
            {
                field.column: field.get_db_prep_save(getattr(obj, field.attname), connection)
                for field in targets
            }
            for obj in objects
        ],
        cls=_FullPrecision,
    )
    quote = connection.ops.quote_name
    record = ", ".join(
        f"{quote(field.column)} {_record_type(connection, field)}" for field in targets
    )
    assignments = ", ".join(f"{quote(f.column)} = new.{quote(f.column)}" for f in targets[1:])
    pk = quote(meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(meta.db_table)} AS old SET {assignments} "
            f"FROM jsonb_to_recordset(%s::jsonb) AS new({record}) WHERE old.{pk} = new.{pk}",
            [data],
        )


def _record_type(connection, field):
    """The column's type without a length (varchar, not varchar(200)): the record only carries
    the values, the table's column still checks them."""
    if field.is_relation:
        return field.target_field.rel_db_type(connection)
    return field.db_type(connection).split("(")[0]


def any_of(values):
    """The right-hand side of an `__in` lookup for many values (`contact_id__in=any_of(ids)`),
    sent as one JSON parameter: `IN (SELECT ... FROM the JSON array)`. Django sends a list as one
    parameter per value, which psycopg splices one by one into the SQL text, and PostgreSQL's
    plans for long `IN (...)` lists were worse: for the import's 2,000-value lookups 12 to 60 ms
    a query, against 5 to 11 ms with one JSON parameter. Integers (ids) and strings only."""
    values = list(values)
    if not values:
        return []  # Django answers an empty IN without a query (the JSON's type is unknown)
    data = json.dumps(values)
    integers = all(isinstance(value, int) for value in values)
    if default_connection.vendor == "postgresql":
        element = "jsonb_array_elements_text(%s::jsonb)"
        return RawSQL(f"SELECT ({element})::bigint" if integers else f"SELECT {element}", [data])
    if default_connection.vendor == "sqlite":
        return RawSQL("SELECT value FROM json_each(%s)", [data])
    return values
