"""Each portal user carries a copy of their contact's CRM account name (User.crm_account_name), so
that the users page filters by CRM account on the users table alone, through its own index (an
index range read in name order), instead of testing every contact of the account.

The copy is kept by database triggers, like the counters (helpers.counter_triggers), so that no
code path that writes users or contacts (ORM, the import's COPY, the sync's bulk updates, raw
SQL) can forget it:

- a user inserted with a contact, or whose contact changes, takes that contact's name;
- a write of another value into the copy (a stale model instance saved) is replaced by the
  contact's name again, so the copy cannot be set by hand;
- a contact whose CRM account name changes passes it on to its user in the same statement.

Employees (no contact) have NULL. `manage.py recount` compares the copies with the contacts."""

from collections import Counter

from django.db import connection, transaction
from django.db.models import F

from accounts.models import User
from helpers.counter_drift import Drift

_FILL = (
    "(SELECT contacts_contact.crm_account_name FROM contacts_contact "
    "WHERE contacts_contact.id = {row}.contact_id)"
)

# A user inserted with the copy already given (the CSV import's COPY, which read the contact's
# name with the contact) is not filled row by row: one check per statement compares every given
# copy with its contact (an index lookup each, through the statement's transition table) and
# writes the contact's name over any that differs, a stale or forged value. The per-row trigger
# and its query were about a seventh of the database's time of an import batch's writes.
POSTGRES_INSERT = [
    # The UPDATE runs only when a copy differs: an UPDATE of no row still fires the counters'
    # statement triggers.
    "CREATE OR REPLACE FUNCTION accounts_user_crm_account_correct() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ DECLARE stale bigint[]; BEGIN "
    "stale := ARRAY(SELECT new_rows.id FROM new_rows WHERE new_rows.contact_id IS NOT NULL "
    f"AND new_rows.crm_account_name IS DISTINCT FROM {_FILL.format(row='new_rows')}); "
    "IF cardinality(stale) > 0 THEN "
    f"UPDATE accounts_user SET crm_account_name = {_FILL.format(row='accounts_user')} "
    "WHERE accounts_user.id = ANY (stale); END IF; "
    "RETURN NULL; END $$",
    # Filled row by row only where the copy is missing (or given without a contact): the ORM's
    # inserts, which never give it.
    "CREATE TRIGGER accounts_user_crm_account_insert BEFORE INSERT ON accounts_user "
    "FOR EACH ROW WHEN ((NEW.contact_id IS NULL) <> (NEW.crm_account_name IS NULL)) "
    "EXECUTE FUNCTION accounts_user_crm_account_fill()",
    "CREATE TRIGGER accounts_user_crm_account_correct AFTER INSERT ON accounts_user "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION accounts_user_crm_account_correct()",
]
POSTGRES_CREATE = [
    "CREATE FUNCTION accounts_user_crm_account_fill() RETURNS trigger LANGUAGE plpgsql AS $$ "
    f"BEGIN NEW.crm_account_name := {_FILL.format(row='NEW')}; RETURN NEW; END $$",
    *POSTGRES_INSERT,
    "CREATE TRIGGER accounts_user_crm_account_update BEFORE UPDATE ON accounts_user "
    "FOR EACH ROW WHEN (NEW.contact_id IS DISTINCT FROM OLD.contact_id "
    "OR NEW.crm_account_name IS DISTINCT FROM OLD.crm_account_name) "
    "EXECUTE FUNCTION accounts_user_crm_account_fill()",
    # One per statement, from its transition tables: a sync or import batch that renames 5,000
    # contacts' CRM account updates their users in one join.
    "CREATE FUNCTION contacts_contact_crm_account_follow() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN UPDATE accounts_user SET crm_account_name = new_rows.crm_account_name "
    "FROM new_rows JOIN old_rows ON old_rows.id = new_rows.id "
    "WHERE accounts_user.contact_id = new_rows.id "
    "AND new_rows.crm_account_name IS DISTINCT FROM old_rows.crm_account_name; "
    "RETURN NULL; END $$",
    "CREATE TRIGGER contacts_contact_crm_account_follow AFTER UPDATE ON contacts_contact "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION contacts_contact_crm_account_follow()",
]
POSTGRES_DROP_INSERT = [
    "DROP TRIGGER IF EXISTS accounts_user_crm_account_insert ON accounts_user",
    "DROP TRIGGER IF EXISTS accounts_user_crm_account_correct ON accounts_user",
    "DROP FUNCTION IF EXISTS accounts_user_crm_account_correct()",
]
POSTGRES_DROP = [
    *POSTGRES_DROP_INSERT,
    "DROP TRIGGER IF EXISTS accounts_user_crm_account_update ON accounts_user",
    "DROP FUNCTION IF EXISTS accounts_user_crm_account_fill()",
    "DROP TRIGGER IF EXISTS contacts_contact_crm_account_follow ON contacts_contact",
    "DROP FUNCTION IF EXISTS contacts_contact_crm_account_follow()",
]

# SQLite has no BEFORE triggers that change NEW: the AFTER triggers write the row again (SQLite
# does not fire a trigger from its own statement unless recursive_triggers is on).
_SQLITE_REFILL = (
    f"UPDATE accounts_user SET crm_account_name = {_FILL.format(row='NEW')} WHERE id = NEW.id;"
)
SQLITE_CREATE = [
    "CREATE TRIGGER IF NOT EXISTS accounts_user_crm_account_insert AFTER INSERT ON accounts_user "
    "WHEN NEW.contact_id IS NOT NULL OR NEW.crm_account_name IS NOT NULL "
    f"BEGIN {_SQLITE_REFILL} END",
    "CREATE TRIGGER IF NOT EXISTS accounts_user_crm_account_update "
    "AFTER UPDATE OF contact_id, crm_account_name ON accounts_user "
    "WHEN NEW.contact_id IS NOT OLD.contact_id OR NEW.crm_account_name IS NOT OLD.crm_account_name "
    f"BEGIN {_SQLITE_REFILL} END",
    "CREATE TRIGGER IF NOT EXISTS contacts_contact_crm_account_follow "
    "AFTER UPDATE OF crm_account_name ON contacts_contact "
    "WHEN NEW.crm_account_name IS NOT OLD.crm_account_name "
    "BEGIN UPDATE accounts_user SET crm_account_name = NEW.crm_account_name "
    "WHERE contact_id = NEW.id; END",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS accounts_user_crm_account_insert",
    "DROP TRIGGER IF EXISTS accounts_user_crm_account_update",
    "DROP TRIGGER IF EXISTS contacts_contact_crm_account_follow",
]

COPY_EXISTING = (
    f"UPDATE accounts_user SET crm_account_name = {_FILL.format(row='accounts_user')} "
    "WHERE contact_id IS NOT NULL"
)


def _statements(vendor, postgres, sqlite):
    if vendor not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"No CRM account triggers for {vendor}.")
    return postgres if vendor == "postgresql" else sqlite


def create(schema_editor):
    """For a RunPython migration: the triggers, then the copies of the users already there."""
    vendor = schema_editor.connection.vendor
    for statement in _statements(vendor, POSTGRES_CREATE, SQLITE_CREATE):
        schema_editor.execute(statement)
    schema_editor.execute(COPY_EXISTING)


def drop(schema_editor):
    vendor = schema_editor.connection.vendor
    for statement in _statements(vendor, POSTGRES_DROP, SQLITE_DROP):
        schema_editor.execute(statement)


def restore_sqlite_triggers(connection):
    """SQLite drops a table's triggers when a migration rebuilds the table (see
    helpers.counter_triggers): created again after every migrate, where missing."""
    if connection.vendor != "sqlite":
        return
    if "crm_account_name" not in {
        column.name
        for column in connection.introspection.get_table_description(
            connection.cursor(), "accounts_user"
        )
    }:
        return  # migrated back to before the copy
    with connection.cursor() as cursor:
        for statement in SQLITE_CREATE:
            cursor.execute(statement)


def recount(account, fix=False):
    """The users per CRM account name as their copies say and as their contacts say, for the
    names where the two differ (helpers.counter_drift.Drift, the shape `manage.py recount`
    prints); `fix` copies the contacts' names again."""
    with transaction.atomic():
        wrong = User.objects.filter(portal_account=account, contact__isnull=False).exclude(
            crm_account_name=F("contact__crm_account_name")
        )
        kept, counted = Counter(), Counter()
        for copied, contacts_name in wrong.values_list(
            "crm_account_name", "contact__crm_account_name"
        ):
            kept[copied] += 1
            counted[contacts_name] += 1
        if fix and kept:
            with connection.cursor() as cursor:
                cursor.execute(COPY_EXISTING + " AND portal_account_id = %s", [account.pk])
        return [
            Drift({"crm_account": name}, kept[name], counted[name])
            for name in sorted(set(kept) | set(counted), key=str)
            if kept[name] != counted[name]
        ]
