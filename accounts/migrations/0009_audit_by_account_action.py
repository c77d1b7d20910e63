"""An index for the dashboard's refused sign-ins: one account's events of a few actions in the
last week, read as one range of (portal_account, action, created_at) instead of ANDing the
action and created_at indexes (every account's week, and the account's whole history of
failures). Every sign-in attempt writes to this table, so on PostgreSQL the index is built
CONCURRENTLY, without holding up those writes."""

from django.db import migrations, models

INDEX = models.Index(
    fields=["portal_account", "action", "created_at"], name="audit_by_account_action"
)


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_by_account_action "
            "ON accounts_auditevent (portal_account_id, action, created_at)"
        )
    else:
        schema_editor.add_index(apps.get_model("accounts", "AuditEvent"), INDEX)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX CONCURRENTLY IF EXISTS audit_by_account_action")
    else:
        schema_editor.remove_index(apps.get_model("accounts", "AuditEvent"), INDEX)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("accounts", "0008_sessions_audit_agent_two_factor_policy"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="auditevent", index=INDEX)],
            database_operations=[migrations.RunPython(create, drop, elidable=False)],
        ),
    ]
