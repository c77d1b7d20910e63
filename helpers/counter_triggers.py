"""Counter tables kept by triggers: how many rows of a table fall in each group (e.g. users of
an account per type and state), updated by the database in the same statement, hence the same
transaction, as the rows. Pages read a few counter rows instead of counting an account's rows,
and no code path that writes the table (ORM, bulk COPY, a queryset update) can forget them.

PostgreSQL: one trigger per statement, reading the statement's transition tables, so a batch
of 5,000 inserted rows updates each counter once; the counters are upserted in key order, so
two transactions lock them in the same order. SQLite (the embedded default, small accounts) has
no statement triggers: a trigger per row does the same.

A `Counter` names the source table, the counter table, its count column, the key columns of the
counter with the source expression of each (written for a row called `{row}`), the condition
for a source row to count, and the source columns whose change can move a row between keys."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Counter:
    name: str
    source: str
    table: str
    count_column: str
    keys: tuple[tuple[str, str], ...]  # (counter column, source expression with {row})
    counted: str  # a condition on {row}
    watched: tuple[str, ...]  # source columns that decide the key or the condition

    @property
    def key_columns(self):
        return ", ".join(column for column, _expression in self.keys)

    def _select(self, row, change):
        values = ", ".join(
            f"{expression.format(row=row)} AS {column}" for column, expression in self.keys
        )
        return f"SELECT {values}, {change} AS change FROM {row} WHERE {self._counted(row)}"

    def _counted(self, row):
        return self.counted.format(row=row)

    def _upsert(self, selects):
        return (
            f"INSERT INTO {self.table} ({self.key_columns}, {self.count_column}) "
            f"SELECT {self.key_columns}, sum(change) FROM ({' UNION ALL '.join(selects)}) AS moves "
            f"GROUP BY {self.key_columns} HAVING sum(change) <> 0 ORDER BY {self.key_columns} "
            f"ON CONFLICT ({self.key_columns}) DO UPDATE SET {self.count_column} = "
            f"{self.table}.{self.count_column} + EXCLUDED.{self.count_column}"
        )

    def postgres_create(self):
        # Most updates (a sign-in's last_login) move no row between counters: their -1 and +1
        # cancel out in the sum and nothing is written.
        moves = {
            "INSERT": ([self._select("new_rows", 1)], "NEW TABLE AS new_rows"),
            "UPDATE": (
                [self._select("old_rows", -1), self._select("new_rows", 1)],
                "OLD TABLE AS old_rows NEW TABLE AS new_rows",
            ),
            "DELETE": ([self._select("old_rows", -1)], "OLD TABLE AS old_rows"),
        }
        statements = []
        # A trigger with transition tables serves one event, hence one per event.
        for event, (selects, tables) in moves.items():
            function = f"{self.name}_{event.lower()}"
            statements += [
                f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN {self._upsert(selects)}; RETURN NULL; END $$",
                f"CREATE TRIGGER {function} AFTER {event} ON {self.source} "
                f"REFERENCING {tables} FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
            ]
        return statements

    def postgres_drop(self):
        statements = []
        for event in ("insert", "update", "delete"):
            statements += [
                f"DROP TRIGGER IF EXISTS {self.name}_{event} ON {self.source}",
                f"DROP FUNCTION IF EXISTS {self.name}_{event}()",
            ]
        return statements

    def _sqlite_add(self, row):
        values = ", ".join(expression.format(row=row) for _column, expression in self.keys)
        # The WHERE also settles a parsing ambiguity of INSERT ... SELECT ... ON CONFLICT.
        return (
            f"INSERT INTO {self.table} ({self.key_columns}, {self.count_column}) "
            f"SELECT {values}, 1 WHERE {self._counted(row)} "
            f"ON CONFLICT ({self.key_columns}) DO UPDATE SET "
            f"{self.count_column} = {self.count_column} + 1;"
        )

    def _sqlite_remove(self, row):
        same_key = " AND ".join(
            f"{column} = {expression.format(row=row)}" for column, expression in self.keys
        )
        return (
            f"UPDATE {self.table} SET {self.count_column} = {self.count_column} - 1 "
            f"WHERE {self._counted(row)} AND {same_key};"
        )

    def sqlite_create(self):
        moved = " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in self.watched)
        return [
            f"CREATE TRIGGER IF NOT EXISTS {self.name}_insert AFTER INSERT ON {self.source} "
            f"BEGIN {self._sqlite_add('NEW')} END",
            f"CREATE TRIGGER IF NOT EXISTS {self.name}_update AFTER UPDATE ON {self.source} "
            f"WHEN {moved} "
            f"BEGIN {self._sqlite_remove('OLD')} {self._sqlite_add('NEW')} END",
            f"CREATE TRIGGER IF NOT EXISTS {self.name}_delete AFTER DELETE ON {self.source} "
            f"BEGIN {self._sqlite_remove('OLD')} END",
        ]

    def sqlite_drop(self):
        return [
            f"DROP TRIGGER IF EXISTS {self.name}_{event}"
            for event in ("insert", "update", "delete")
        ]

    def start_from_existing_rows(self):
        values = ", ".join(
            f"{expression.format(row=self.source)} AS {column}" for column, expression in self.keys
        )
        return (
            f"INSERT INTO {self.table} ({self.key_columns}, {self.count_column}) "
            f"SELECT {self.key_columns}, count(*) FROM (SELECT {values} FROM {self.source} "
            f"WHERE {self._counted(self.source)}) AS existing GROUP BY {self.key_columns}"
        )

    def create(self, schema_editor):
        """For a RunPython migration: the triggers, then counters for the rows already there."""
        vendor = schema_editor.connection.vendor
        if vendor not in ("postgresql", "sqlite"):
            raise NotImplementedError(f"No counter triggers for {vendor}.")
        for statement in self.postgres_create() if vendor == "postgresql" else self.sqlite_create():
            schema_editor.execute(statement)
        schema_editor.execute(self.start_from_existing_rows())

    def restore_sqlite_triggers(self, connection):
        """SQLite rebuilds a table for most ALTERs (a new column with a default, a changed
        constraint) and the rebuild drops the table's triggers: after every migrate, the
        counters' triggers are created again where missing (the rows the rebuild copied are
        the same rows, so the counters are still right). PostgreSQL keeps triggers on ALTER."""
        if connection.vendor != "sqlite":
            return
        if self.table not in connection.introspection.table_names():
            return  # migrated back to before the counters
        with connection.cursor() as cursor:
            for statement in self.sqlite_create():
                cursor.execute(statement)

    def drop(self, schema_editor):
        vendor = schema_editor.connection.vendor
        for statement in self.postgres_drop() if vendor == "postgresql" else self.sqlite_drop():
            schema_editor.execute(statement)
        schema_editor.execute(f"DELETE FROM {self.table}")
