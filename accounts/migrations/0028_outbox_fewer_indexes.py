"""Three indexes of the outbox that no query needs: the status column's own and its LIKE twin
(every query by status reads (status, created_at) or a lane's partial index) and (status,
queued_at), which only the sweep of unsent rows read (mail.tasks.requeue_unsent now reads the
lanes' partial indexes). Marking a row sent changes its status, so PostgreSQL writes an entry in
every index without a condition for each email: these three were 3 of 8. Dropped CONCURRENTLY
on PostgreSQL: every email writes to this table."""

from django.db import migrations, models

STATUS_INDEXES = ("accounts_outboxemail_status_584e0f91", "accounts_outboxemail_status_584e0f91_like")
QUEUED_INDEX = models.Index(fields=["status", "queued_at"], name="accounts_ou_status_6badc2_idx")


def drop(apps, schema_editor):
    concurrently = " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""
    for name in (*STATUS_INDEXES, QUEUED_INDEX.name):
        schema_editor.execute(f"DROP INDEX{concurrently} IF EXISTS {name}")


def create(apps, schema_editor):
    postgresql = schema_editor.connection.vendor == "postgresql"
    concurrently = " CONCURRENTLY" if postgresql else ""
    statements = [
        f"CREATE INDEX{concurrently} IF NOT EXISTS {STATUS_INDEXES[0]} "
        "ON accounts_outboxemail (status)",
        f"CREATE INDEX{concurrently} IF NOT EXISTS {QUEUED_INDEX.name} "
        "ON accounts_outboxemail (status, queued_at)",
    ]
    if postgresql:
        statements.append(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {STATUS_INDEXES[1]} "
            "ON accounts_outboxemail (status varchar_pattern_ops)"
        )
    for sql in statements:
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    atomic = False  # DROP INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("accounts", "0027_fewer_insert_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="outboxemail",
                    name="status",
                    field=models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("sent", "Sent"),
                            ("failed", "Failed"),
                            ("cancelled", "Cancelled"),
                        ],
                        default="pending",
                        max_length=10,
                    ),
                ),
                migrations.RemoveIndex(model_name="outboxemail", name=QUEUED_INDEX.name),
            ],
            database_operations=[migrations.RunPython(drop, create, elidable=False)],
        ),
    ]
