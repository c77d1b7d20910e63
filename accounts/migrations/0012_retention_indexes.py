"""Indexes for retention (operations.retention): login tokens by expiry, and outbox rows by
status and age, so the daily deletion reads a range of old rows instead of the whole table.
Both tables are written by every sign-in link and email, so on PostgreSQL the indexes are built
CONCURRENTLY, without holding up those writes."""

from django.db import migrations, models

TOKEN_INDEX = models.Index(fields=["expires_at"], name="token_by_expiry")
OUTBOX_INDEX = models.Index(fields=["status", "created_at"], name="outbox_by_status_created")

CREATE = (
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS token_by_expiry ON accounts_logintoken (expires_at)",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS outbox_by_status_created "
    "ON accounts_outboxemail (status, created_at)",
)
DROP = (
    "DROP INDEX CONCURRENTLY IF EXISTS token_by_expiry",
    "DROP INDEX CONCURRENTLY IF EXISTS outbox_by_status_created",
)


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in CREATE:
            schema_editor.execute(sql)
    else:
        schema_editor.add_index(apps.get_model("accounts", "LoginToken"), TOKEN_INDEX)
        schema_editor.add_index(apps.get_model("accounts", "OutboxEmail"), OUTBOX_INDEX)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in DROP:
            schema_editor.execute(sql)
    else:
        schema_editor.remove_index(apps.get_model("accounts", "LoginToken"), TOKEN_INDEX)
        schema_editor.remove_index(apps.get_model("accounts", "OutboxEmail"), OUTBOX_INDEX)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("accounts", "0011_outbox_email_queued_by"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(model_name="logintoken", index=TOKEN_INDEX),
                migrations.AddIndex(model_name="outboxemail", index=OUTBOX_INDEX),
            ],
            database_operations=[migrations.RunPython(create, drop, elidable=False)],
        ),
    ]
