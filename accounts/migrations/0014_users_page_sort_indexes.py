"""Every sort the Users page offers is an index range (accounts.user_listing): the date indexes
put NULLS FIRST, so that "oldest first" and "newest first" (never signed in = the oldest) read
one index in either direction, where a sort of the whole tab was planned before (the default
sort of the Disabled tab had no index; the Unconfirmed tab's needed NULLS LAST backwards).
On PostgreSQL the indexes are built CONCURRENTLY, so users stay writable meanwhile."""

from django.db import migrations, models
from django.db.models import F, Q

NEW = [
    models.Index(
        F("portal_account"),
        F("state"),
        F("last_login").asc(nulls_first=True),
        F("id"),
        name="user_tab_by_last_login",
    ),
    models.Index(
        F("portal_account"),
        F("state"),
        F("last_invited_at").asc(nulls_first=True),
        F("id"),
        name="user_tab_by_last_sent",
    ),
    models.Index(
        F("portal_account"),
        F("invited_at").asc(nulls_first=True),
        F("id"),
        condition=Q(state="unconfirmed"),
        name="user_unconfirmed_by_invited",
    ),
    models.Index(
        F("portal_account"),
        F("disabled_at").asc(nulls_first=True),
        F("id"),
        condition=Q(state="disabled"),
        name="user_disabled_by_date",
    ),
]
OLD = [
    models.Index(
        fields=["portal_account", "state", "last_invited_at", "id"], name="user_tab_by_sent"
    ),
    models.Index(fields=["portal_account", "state", "last_login", "id"], name="user_tab_by_login"),
]


def _for_sqlite(index):
    """SQLite has no NULLS FIRST in an index, and needs none: it sorts NULL first ascending."""
    if not index.expressions:
        return index
    columns = [getattr(part, "expression", part) for part in index.expressions]
    return models.Index(*columns, condition=index.condition, name=index.name)


def _swap(schema_editor, user_model, add, remove):
    options = {}
    if schema_editor.connection.vendor == "postgresql":
        options = {"concurrently": True}
    else:
        add, remove = [_for_sqlite(index) for index in add], [_for_sqlite(i) for i in remove]
    for index in add:
        schema_editor.add_index(user_model, index, **options)
    for index in remove:
        schema_editor.remove_index(user_model, index, **options)


def forwards(apps, schema_editor):
    _swap(schema_editor, apps.get_model("accounts", "User"), NEW, OLD)


def backwards(apps, schema_editor):
    _swap(schema_editor, apps.get_model("accounts", "User"), OLD, NEW)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [("accounts", "0013_user_counts")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                *(migrations.RemoveIndex(model_name="user", name=index.name) for index in OLD),
                *(migrations.AddIndex(model_name="user", index=index) for index in NEW),
            ],
            database_operations=[migrations.RunPython(forwards, backwards, elidable=False)],
        ),
    ]
