import importlib

from django.db import migrations, models

# SQLite adds a NOT NULL column by rebuilding the table, which drops its triggers: the user
# counters' triggers (0013_user_counts) are put back afterwards, and before the column is
# removed again on the way back. PostgreSQL adds the column in place and keeps them.
user_counts = importlib.import_module("accounts.migrations.0013_user_counts")


def restore_sqlite_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for statement in user_counts.SQLITE_DROP + user_counts.SQLITE_CREATE:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0014_access_blocked_email")]

    operations = [
        migrations.RunPython(migrations.RunPython.noop, restore_sqlite_triggers),
        migrations.AddField(
            model_name="user",
            name="time_zone",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.RunPython(restore_sqlite_triggers, migrations.RunPython.noop),
    ]
