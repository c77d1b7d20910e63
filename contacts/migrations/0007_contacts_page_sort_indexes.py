"""Every sort the contacts page offers is an index range (contacts.contact_listing.SORTS): by
email, CRM account and date added among the live contacts, by deletion date among the deleted
ones (name order had its indexes already). On PostgreSQL the indexes are built CONCURRENTLY, so
the CRM sync keeps writing contacts meanwhile."""

from django.db import migrations, models
from django.db.models import Q

LIVE, DELETED = Q(deleted_at__isnull=True), Q(deleted_at__isnull=False)
NEW = [
    models.Index(
        fields=["portal_account", "email", "id"], condition=LIVE, name="contact_live_by_email"
    ),
    models.Index(
        fields=["portal_account", "crm_account_name", "id"],
        condition=LIVE,
        name="contact_live_by_crm_account",
    ),
    models.Index(
        fields=["portal_account", "created_at", "id"], condition=LIVE, name="contact_live_by_created"
    ),
    models.Index(
        fields=["portal_account", "deleted_at", "id"],
        condition=DELETED,
        name="contact_deleted_by_date",
    ),
]


def _options(schema_editor):
    return {"concurrently": True} if schema_editor.connection.vendor == "postgresql" else {}


def forwards(apps, schema_editor):
    contact = apps.get_model("contacts", "Contact")
    for index in NEW:
        schema_editor.add_index(contact, index, **_options(schema_editor))


def backwards(apps, schema_editor):
    contact = apps.get_model("contacts", "Contact")
    for index in NEW:
        schema_editor.remove_index(contact, index, **_options(schema_editor))


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [("contacts", "0006_contact_counts")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="contact", index=i) for i in NEW],
            database_operations=[migrations.RunPython(forwards, backwards, elidable=False)],
        ),
    ]
