"""PostgreSQL: a user inserted with their copy of the contact's CRM account name is checked once
per statement instead of filled row by row (accounts.user_crm_accounts.POSTGRES_INSERT). SQLite
keeps its triggers per row."""

from django.db import migrations

from accounts import user_crm_accounts

# The trigger as migration 0025 made it, for going back.
FILL_EVERY_ROW = (
    "CREATE TRIGGER accounts_user_crm_account_insert BEFORE INSERT ON accounts_user "
    "FOR EACH ROW WHEN (NEW.contact_id IS NOT NULL OR NEW.crm_account_name IS NOT NULL) "
    "EXECUTE FUNCTION accounts_user_crm_account_fill()"
)


def check_per_statement(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in user_crm_accounts.POSTGRES_DROP_INSERT + user_crm_accounts.POSTGRES_INSERT:
        schema_editor.execute(statement)


def fill_every_row(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in user_crm_accounts.POSTGRES_DROP_INSERT + [FILL_EVERY_ROW]:
        schema_editor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0028_outbox_fewer_indexes"),
    ]

    operations = [
        migrations.RunPython(check_per_statement, fill_every_row),
    ]
