"""Paging through the matches of a search without letting PostgreSQL walk a whole account.

A search's page is "the first 50 matches in name order". Asked as one query, the planner
guesses how many users match (say 120 of 1,000,000) and walks the name index until it has 50,
filtering each row: when the real matches sit far down the index, that read 142,000 rows and
took 2.4 s for a contact id that matches one user. So the matches are found first, unordered
(the trigram and contact-id indexes, combined), up to a cap that doubles as the count; then
only those ids are ordered and paged. A broad search ("an") finds more than the cap: its
matches are dense, the ordered walk stops early, and nobody pages through them anyway."""

from django.core.paginator import Paginator


def search_paginator(matching, order_by, page_size, cap):
    """A Paginator over the ids of `matching` (a scoped queryset) in `order_by`, counting up to
    `cap` (paginator.capped says there were more)."""
    found = list(matching.order_by().values_list("pk", flat=True)[: cap + 1])
    capped = len(found) > cap
    if capped:
        ids = matching.order_by(*order_by).values_list("pk", flat=True)
    else:
        # The ids come from the scoped query above. Filtering by account again would let the
        # planner walk the account's name index once more, which is what this avoids.
        ids = (
            matching.model._base_manager.filter(pk__in=found)
            .order_by(*order_by)
            .values_list("pk", flat=True)
        )
    return _counted_up_to(ids, page_size, len(found), cap)


def walk_paginator(ordered, page_size, cap):
    """A Paginator over the ids of `ordered`, a scoped queryset whose order an index walks from
    the account's end (the orphaned users: the account's deleted contacts, newest first), so
    a page reads its rows and the ones before it, never the whole table. Counting stops at
    `cap` (paginator.capped says there were more). search_paginator's second step, ordering a
    list of ids, would join whatever the order needs for every id: for the orphans that was
    every contact of every account (a hash join), 40 ms at 80,000 contacts and growing."""
    found = len(ordered.order_by().values_list("pk", flat=True)[: cap + 1])
    return _counted_up_to(ordered.values_list("pk", flat=True), page_size, found, cap)


def _counted_up_to(ids, page_size, found, cap):
    paginator = Paginator(ids, page_size)
    # Paginator.count is a cached property: setting it spares a count query.
    paginator.count = min(found, cap)
    paginator.capped = found > cap
    return paginator


def suggestions(matching, sort_key, found=50, shown=10):
    """What a type-ahead offers: up to `found` matches in no order (so no ordered walk of an
    account's index, as above), the first `shown` of them by `sort_key`."""
    return sorted(matching.order_by()[:found], key=sort_key)[:shown]
