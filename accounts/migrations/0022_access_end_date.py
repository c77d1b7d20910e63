"""The access end date (accounts.expiry) and the index its sweep reads."""

from django.db import migrations, models
from django.db.models import Q

INDEX = models.Index(
    fields=["access_ends_on", "id"],
    condition=Q(access_ends_on__isnull=False, state__in=["unconfirmed", "enabled"]),
    name="user_access_ends",
)


def _for_sqlite(index):
    """SQLite has no NULLS FIRST in an index, and needs none: it sorts NULL first ascending."""
    if not index.expressions:
        return index
    columns = [getattr(part, "expression", part) for part in index.expressions]
    return models.Index(*columns, condition=index.condition, name=index.name)


def forwards(apps, schema_editor):
    # CONCURRENTLY on PostgreSQL: users stay writable while a million rows are indexed.
    concurrent = schema_editor.connection.vendor == "postgresql"
    index = INDEX if concurrent else _for_sqlite(INDEX)
    user = apps.get_model("accounts", "User")
    schema_editor.add_index(user, index, **({"concurrently": True} if concurrent else {}))


def backwards(apps, schema_editor):
    concurrent = schema_editor.connection.vendor == "postgresql"
    index = INDEX if concurrent else _for_sqlite(INDEX)
    user = apps.get_model("accounts", "User")
    schema_editor.remove_index(user, index, **({"concurrently": True} if concurrent else {}))


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [("accounts", "0021_invitation_reminders")]

    operations = [
        # Nullable, no default: SQLite adds the column in place (see User.time_zone).
        migrations.AddField(
            model_name="user",
            name="access_ends_on",
            field=models.DateField(blank=True, null=True),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="user", index=INDEX)],
            database_operations=[migrations.RunPython(forwards, backwards, elidable=False)],
        ),
    ]
