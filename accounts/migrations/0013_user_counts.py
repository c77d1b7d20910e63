"""Per-account user counters (accounts.models.UserCount), kept by triggers on accounts_user.

PostgreSQL: one trigger per statement, reading the statement's transition tables, so an import
batch of 1,000 users updates each counter once, not 1,000 times; the rows are upserted in key
order so that two transactions always lock counters in the same order. SQLite (the embedded
default, small accounts) has no statement triggers: a trigger per row does the same.

Only portal users of an account are counted (MSSP staff have no account). The counters start
from the users that exist when the migration runs."""

from django.db import migrations, models

COUNTED = "kind = 'portal' AND portal_account_id IS NOT NULL"
KEY = "portal_account_id, user_type, state"
UPSERT_TAIL = (
    f"ON CONFLICT ({KEY}) DO UPDATE SET users = accounts_usercount.users + EXCLUDED.users"
)

POSTGRES_CREATE = [
    f"""
    CREATE FUNCTION accounts_user_count_changes() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO accounts_usercount ({KEY}, users)
            SELECT {KEY}, count(*) FROM new_rows WHERE {COUNTED}
            GROUP BY {KEY} ORDER BY {KEY}
            {UPSERT_TAIL};
        ELSIF TG_OP = 'DELETE' THEN
            INSERT INTO accounts_usercount ({KEY}, users)
            SELECT {KEY}, -count(*) FROM old_rows WHERE {COUNTED}
            GROUP BY {KEY} ORDER BY {KEY}
            {UPSERT_TAIL};
        ELSE
            -- Most updates (a sign-in's last_login, a new name) move no user between counters:
            -- their +1 and -1 cancel out and nothing is written.
            INSERT INTO accounts_usercount ({KEY}, users)
            SELECT {KEY}, sum(change) FROM (
                SELECT {KEY}, -1 AS change FROM old_rows WHERE {COUNTED}
                UNION ALL
                SELECT {KEY}, 1 AS change FROM new_rows WHERE {COUNTED}
            ) AS moves
            GROUP BY {KEY} HAVING sum(change) <> 0 ORDER BY {KEY}
            {UPSERT_TAIL};
        END IF;
        RETURN NULL;
    END
    $$
    """,
    # A trigger with transition tables serves one event, hence three.
    """CREATE TRIGGER accounts_user_count_insert AFTER INSERT ON accounts_user
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION accounts_user_count_changes()""",
    """CREATE TRIGGER accounts_user_count_update AFTER UPDATE ON accounts_user
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION accounts_user_count_changes()""",
    """CREATE TRIGGER accounts_user_count_delete AFTER DELETE ON accounts_user
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION accounts_user_count_changes()""",
]
POSTGRES_DROP = [
    "DROP TRIGGER IF EXISTS accounts_user_count_insert ON accounts_user",
    "DROP TRIGGER IF EXISTS accounts_user_count_update ON accounts_user",
    "DROP TRIGGER IF EXISTS accounts_user_count_delete ON accounts_user",
    "DROP FUNCTION IF EXISTS accounts_user_count_changes()",
]


def _sqlite_add(row):
    # SQLite needs a WHERE on an INSERT ... SELECT before ON CONFLICT (a parsing ambiguity).
    return (
        f"INSERT INTO accounts_usercount ({KEY}, users) "
        f"SELECT {row}.portal_account_id, {row}.user_type, {row}.state, 1 "
        f"WHERE {row}.kind = 'portal' AND {row}.portal_account_id IS NOT NULL "
        f"ON CONFLICT ({KEY}) DO UPDATE SET users = users + 1;"
    )


def _sqlite_remove(row):
    return (
        f"UPDATE accounts_usercount SET users = users - 1 "
        f"WHERE {row}.kind = 'portal' AND portal_account_id = {row}.portal_account_id "
        f"AND user_type = {row}.user_type AND state = {row}.state;"
    )


MOVED = " OR ".join(
    f"OLD.{column} IS NOT NEW.{column}"
    for column in ("kind", "portal_account_id", "user_type", "state")
)
SQLITE_CREATE = [
    f"""CREATE TRIGGER accounts_user_count_insert AFTER INSERT ON accounts_user
    BEGIN {_sqlite_add("NEW")} END""",
    f"""CREATE TRIGGER accounts_user_count_update AFTER UPDATE ON accounts_user
    WHEN {MOVED}
    BEGIN {_sqlite_remove("OLD")} {_sqlite_add("NEW")} END""",
    f"""CREATE TRIGGER accounts_user_count_delete AFTER DELETE ON accounts_user
    BEGIN {_sqlite_remove("OLD")} END""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS accounts_user_count_insert",
    "DROP TRIGGER IF EXISTS accounts_user_count_update",
    "DROP TRIGGER IF EXISTS accounts_user_count_delete",
]

START_FROM_EXISTING_USERS = (
    f"INSERT INTO accounts_usercount ({KEY}, users) "
    f"SELECT {KEY}, count(*) FROM accounts_user WHERE {COUNTED} GROUP BY {KEY}"
)


def _run(schema_editor, statements):
    for statement in statements:
        schema_editor.execute(statement)


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"No user-count triggers for {vendor}.")
    _run(schema_editor, POSTGRES_CREATE if vendor == "postgresql" else SQLITE_CREATE)
    schema_editor.execute(START_FROM_EXISTING_USERS)


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    _run(schema_editor, POSTGRES_DROP if vendor == "postgresql" else SQLITE_DROP)
    schema_editor.execute("DELETE FROM accounts_usercount")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0012_retention_indexes")]

    operations = [
        migrations.CreateModel(
            name="UserCount",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("user_type", models.CharField(max_length=20)),
                ("state", models.CharField(max_length=20)),
                ("users", models.BigIntegerField(default=0)),
                (
                    "portal_account",
                    models.ForeignKey(
                        on_delete=models.deletion.CASCADE,
                        related_name="user_counts",
                        to="accounts.portalaccount",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("portal_account", "user_type", "state"), name="user_count_key"
                    )
                ]
            },
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
