"""Walking a large range of rows in batches by a unique sort key, without OFFSET and without
re-reading rows already done: `(a, b) > (x, y)`, a row comparison PostgreSQL answers from an
index on (a, b) (SQLite gets the equivalent OR)."""

from django.db.models import F
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan


def batches(queryset, fields, size):
    """Yield lists of `fields` value tuples (the last field unique, such as id), `size` at a
    time, in that order. The queryset is read again for each batch, so rows changed by the
    caller between batches are seen as they are then."""
    after = None
    while True:
        rows = queryset
        if after is not None:
            rows = rows.filter(TupleGreaterThan(Tuple(*(F(f) for f in fields)), after))
        batch = list(rows.order_by(*fields).values_list(*fields)[:size])
        if not batch:
            return
        yield batch
        if len(batch) < size:
            return
        after = batch[-1]
