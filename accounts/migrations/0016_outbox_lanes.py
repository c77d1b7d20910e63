"""The batch sender's claim (mail/batches.py): every pending outbox row has a due time (new rows
get the database's clock, also when inserted in bulk), the pace's reserved turn is kept on the
row, and a partial index per lane reads the due rows as a range. On PostgreSQL the indexes are
built CONCURRENTLY: every email writes to this table."""

import django.db.models.functions.datetime
from django.db import migrations, models

LANE_KINDS = ["login_link", "login_code", "password_reset", "reinvitation", "email_change_confirm"]
URGENT_INDEX = models.Index(
    condition=models.Q(("status", "pending"), ("kind__in", LANE_KINDS)),
    fields=["next_attempt_at", "id"],
    name="outbox_urgent_due",
)
BULK_INDEX = models.Index(
    condition=models.Q(
        ("status", "pending"), models.Q(("kind__in", LANE_KINDS), _negated=True)
    ),
    fields=["next_attempt_at", "id"],
    name="outbox_bulk_due",
)
KINDS_SQL = ", ".join(f"'{kind}'" for kind in LANE_KINDS)
CREATE = (
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS outbox_urgent_due ON accounts_outboxemail "
    f"(next_attempt_at, id) WHERE status = 'pending' AND kind IN ({KINDS_SQL})",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS outbox_bulk_due ON accounts_outboxemail "
    f"(next_attempt_at, id) WHERE status = 'pending' AND NOT (kind IN ({KINDS_SQL}))",
)
DROP = (
    "DROP INDEX CONCURRENTLY IF EXISTS outbox_urgent_due",
    "DROP INDEX CONCURRENTLY IF EXISTS outbox_bulk_due",
)


def fill_due_times(apps, schema_editor):
    # Rows queued before this migration are due when they were queued.
    OutboxEmail = apps.get_model("accounts", "OutboxEmail")
    OutboxEmail.objects.filter(status="pending", next_attempt_at__isnull=True).update(
        next_attempt_at=models.functions.Coalesce("queued_at", "created_at")
    )


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in CREATE:
            schema_editor.execute(sql)
    else:
        for index in (URGENT_INDEX, BULK_INDEX):
            schema_editor.add_index(apps.get_model("accounts", "OutboxEmail"), index)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in DROP:
            schema_editor.execute(sql)
    else:
        for index in (URGENT_INDEX, BULK_INDEX):
            schema_editor.remove_index(apps.get_model("accounts", "OutboxEmail"), index)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("accounts", "0015_role_user_type"),
    ]

    operations = [
        migrations.AddField(
            model_name="outboxemail",
            name="paced_turn_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="outboxemail",
            name="next_attempt_at",
            field=models.DateTimeField(
                blank=True, db_default=django.db.models.functions.datetime.Now(), null=True
            ),
        ),
        migrations.RunPython(fill_due_times, migrations.RunPython.noop, elidable=False),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(model_name="outboxemail", index=URGENT_INDEX),
                migrations.AddIndex(model_name="outboxemail", index=BULK_INDEX),
            ],
            database_operations=[migrations.RunPython(create, drop, elidable=False)],
        ),
    ]
