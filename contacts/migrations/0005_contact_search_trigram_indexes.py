"""Trigram indexes for the contacts page search (name, email or CRM account contains…), on
PostgreSQL only, as accounts 0006 does for the users page: Django's icontains becomes
UPPER(col::text) LIKE UPPER('%term%'), which these indexes serve."""

from django.db import migrations

INDEXES = {
    "contact_name_trgm": "upper((name)::text)",
    "contact_email_trgm": "upper((email)::text)",
    "contact_crm_account_trgm": "upper((crm_account_name)::text)",
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, expression in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON contacts_contact "
            f"USING gin ({expression} gin_trgm_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("contacts", "0004_contacts_page_indexes")]
    operations = [migrations.RunPython(create, drop, elidable=False)]
