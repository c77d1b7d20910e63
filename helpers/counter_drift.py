"""Checking a trigger-kept counter table (helpers.counter_triggers) against a count of the rows
it counts: what `manage.py recount` reports and, with `fix`, rewrites."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Drift:
    key: dict
    kept: int
    counted: int


def drifts(counter_model, scope, key_fields, count_field, counted, fix=False):
    """Compare the counters of `counter_model` matching `scope` (e.g. {"portal_account": a})
    with `counted`, a values() queryset of `key_fields` and `n` (the slow count). The counters
    are locked before the count is read, so a change either committed before the count or waits
    for the fix; call inside a transaction. Returns the keys whose numbers differ."""
    counters = counter_model.objects.select_for_update().filter(**scope)
    kept = {tuple(row[:-1]): row[-1] for row in counters.values_list(*key_fields, count_field)}
    fresh = {tuple(row[field] for field in key_fields): row["n"] for row in counted}
    found = [
        Drift(dict(zip(key_fields, key, strict=True)), kept.get(key, 0), fresh.get(key, 0))
        for key in sorted(set(kept) | set(fresh), key=str)
        if kept.get(key, 0) != fresh.get(key, 0)
    ]
    if fix:
        for drift in found:
            counter_model.objects.update_or_create(
                **scope, **drift.key, defaults={count_field: drift.counted}
            )
    return found
