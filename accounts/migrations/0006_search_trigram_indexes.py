"""Trigram indexes for the users page search (name or email contains…), on PostgreSQL only:
Django's icontains becomes UPPER(col::text) LIKE UPPER('%term%'), which these indexes serve.
SQLite (the embedded demo) has no such index and scans, which is fine at its sizes."""

from django.db import migrations

INDEXES = {
    "user_name_trgm": "upper((name)::text)",
    "user_email_trgm": "upper((email)::text)",
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, expression in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON accounts_user "
            f"USING gin ({expression} gin_trgm_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0005_covering_tab_index")]
    operations = [migrations.RunPython(create, drop, elidable=False)]
