"""Keep PostgreSQL's planner statistics in step with a bulk load into one portal account.

The planner estimates how many rows of a table belong to an account from the statistics of the
table's last ANALYZE. Right after thousands of contacts are loaded into a new account it still
believes the account has one, and plans the next lookups of those contacts for one row: the
portal-user import's lookup of a 5,000-row batch took over 60 s as a nested loop instead of
123 ms (after ANALYZE: 15,000 rows in about 5 s). Autovacuum analyses the table eventually, a
minute or more later, or never when it is off or behind, so the load does it itself: after a
batch, when the rows changed since the table was last analysed are more than twice what the
planner believes the account has (it is then off by a factor of three or more), the table is
analysed. A load into a new account is analysed at about 1,000, 3,000, 9,000 ... rows; a load
the estimate keeps up with (PostgreSQL scales its row counts with the table's size) is never.
ANALYZE samples a bounded number of rows (about 0.2 s for a 50,000-row table) and blocks no
reader or writer; SKIP_LOCKED leaves it to another session that is analysing the table already.

PostgreSQL only: SQLite has no such planner statistics. The imports (imports/pipeline.py) and
the CRM connector's large upserts (contacts/sync.py) use it."""

import json

from django.db import connection

# Fewer changed rows than this never make a plan go wrong by much.
MIN_CHANGED_ROWS = 1000
# Analyse when the changed rows exceed the planner's estimate for the account this many times.
ESTIMATE_FACTOR = 2


def estimated_rows(model, account_id):
    """How many rows of `model` the planner believes `account_id` has."""
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {table} WHERE portal_account_id = %s",
            [account_id],
        )
        (plan,) = cursor.fetchone()
    if isinstance(plan, str):  # EXPLAIN's output is text
        plan = json.loads(plan)
    return plan[0]["Plan"]["Plan Rows"]


def changed_since_analyze(model):
    """Rows inserted, updated or deleted in `model`'s table since it was last analysed, as far
    as the sessions that changed them reported it (a session reports at most once a second)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_get_mod_since_analyze(%s::regclass)", [model._meta.db_table])
        return cursor.fetchone()[0] or 0


def analyze(model):
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE (SKIP_LOCKED) {table}")


class LoadStatistics:
    """The planner statistics of one bulk load: the rows it added to `model`'s table for one
    account, and an ANALYZE when the planner's idea of the account falls far behind."""

    def __init__(self, model, account_id):
        self.model = model
        self.account_id = account_id
        self.unanalysed = 0  # rows this load added since it last analysed the table

    def added(self, count):
        """After a committed batch that added `count` rows. Returns whether it analysed."""
        if connection.vendor != "postgresql" or count <= 0:
            return False
        self.unanalysed += count
        # The server's counters hold other sessions' changes, but this session's own reach
        # them only when it pauses for a second, which a load does not: the larger of the two
        # is a lower bound of what changed.
        changed = max(changed_since_analyze(self.model), self.unanalysed)
        if changed < MIN_CHANGED_ROWS:
            return False
        if changed <= ESTIMATE_FACTOR * estimated_rows(self.model, self.account_id):
            return False
        analyze(self.model)
        self.unanalysed = 0
        return True
