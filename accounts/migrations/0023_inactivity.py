"""The inactivity policy's warning time (accounts.inactivity) and the index it reads."""

from django.db import migrations, models
from django.db.models import F, Q
from django.db.models.functions import Coalesce

INDEX = models.Index(
    F("portal_account"),
    F("user_type"),
    Coalesce("last_login", "activated_at", "created_at"),
    F("id"),
    condition=Q(state="enabled"),
    name="user_inactive_by_type",
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

    dependencies = [("accounts", "0022_access_end_date")]

    operations = [
        migrations.AddField(
            model_name="user",
            name="inactivity_warned_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="user", index=INDEX)],
            database_operations=[migrations.RunPython(forwards, backwards, elidable=False)],
        ),
    ]
