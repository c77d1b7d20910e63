"""Validate and apply stages of the contacts CSV import: fill a portal account's CRM mirror from a
file (upsert), e.g. before a CRM connector exists. Read and map are in csv_reader and
column_mapping (`CONTACT_FIELDS`); the browser wizard (Celery task) and `manage.py
import_contacts` both call these functions, like imports.portal_users for portal users.

Rules, per row (a row gets the first reason that applies):

- `Name` is required. `ContactId` (19 letters and digits), `SalesforceId` (15 or 18 characters,
  stored as 18), `Email` and `Account` are optional; an email, when given, must be valid (an empty
  one is stored as "").
- The row is matched by contact id, else by Salesforce id, within the job's portal account only.
  A match is updated (name, email, CRM account name; a Salesforce id the contact lacks is filled
  in). A contact in the CRM's recycle bin stays deleted: the file is not the CRM's recycle bin.
- No match: a contact is created with source "import", keeping the file's contact id, or a
  generated one when the row has none (so a file of names and emails fills an account before a
  connector exists; such rows cannot be matched again, so importing them twice creates them
  twice).
- The ids of a row must not point at two different contacts ("id_conflict"), and a contact (or
  id) that appears twice in the file fails the second time ("duplicate_row").

Contacts have no lifecycle, so each batch is one transaction of a bulk insert and a bulk update
(helpers.bulk_sql) plus an audit event per contact created ("create_contact") or updated
("update_contact", with the values before and after), written with one bulk insert; the job's
counts, `last_processed_line` and result-file sizes are saved in the same transaction, so a
killed run resumes after the last committed row. `ImportJob` has no `updated` count: updated =
processed - created - failed (`updated_count`).
"""

import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Q
from django.utils import timezone

from accounts import audit
from contacts.models import CONTACT_ID_LENGTH, Contact
from contacts.salesforce_ids import InvalidSalesforceId, to_18
from helpers.bulk_sql import insert, update
from helpers.email_addresses import validate_header_safe
from helpers.one_line_text import one_line
from imports import pipeline
from imports.column_mapping import CONTACT_FIELDS, MappingError, map_columns
from imports.csv_reader import CsvError, read_csv
from imports.models import ImportJob
from imports.pipeline import (
    DryRunReport,
    batch_transaction,
    batches,
    end_dry_run,
    failure_counts,
    mark_failed,
    max_bytes,
    open_source,
    save_progress,
)
from imports.result_files import ResultFiles

FIELDS = CONTACT_FIELDS
DEFAULT_OPTIONS: dict = {}
# Rows per batch. Outside PostgreSQL, updates go through Django's bulk_update, one CASE per column
# with a branch per contact, which grows worse than linearly; on PostgreSQL bigger batches gained
# little (7,000 to 8,000 rows/s either way at 20,000 rows).
BATCH_SIZE = 500
EXAMPLE_HEADER = ("ContactId", "SalesforceId", "Name", "Email", "Account")
SUCCESS_HEADER = ("ContactId", "SalesforceId", "Name", "Action")
FAILURE_HEADER = (
    "Line",
    "ContactId",
    "SalesforceId",
    "Name",
    "Email",
    "Account",
    "ReasonCode",
    "Reason",
)
CREATED = "created"
UPDATED = "updated"

NAME_MISSING = "name_missing"
CONTACT_ID_INVALID = "contact_id_invalid"
SALESFORCE_ID_INVALID = "salesforce_id_invalid"
EMAIL_INVALID = "email_invalid"
VALUE_TOO_LONG = "value_too_long"
ID_CONFLICT = "id_conflict"
DUPLICATE_ROW = "duplicate_row"

REASON_LABELS = {
    NAME_MISSING: "Name missing",
    CONTACT_ID_INVALID: "Contact id malformed",
    SALESFORCE_ID_INVALID: "Invalid Salesforce id",
    EMAIL_INVALID: "Email invalid",
    VALUE_TOO_LONG: "Value too long",
    ID_CONFLICT: "Ids belong to different contacts",
    DUPLICATE_ROW: "Duplicate row in file",
}

_CONTACT_ID = re.compile(rf"^[A-Za-z0-9]{{{CONTACT_ID_LENGTH}}}$")
_NAME_MAX = Contact._meta.get_field("name").max_length
_ACCOUNT_MAX = Contact._meta.get_field("crm_account_name").max_length
_EMAIL_MAX = Contact._meta.get_field("email").max_length


def normalised_options(options):
    return {}


def updated_count(job):
    return max(job.processed - job.created - job.failed, 0)


class RowFailure(Exception):
    def __init__(self, code, reason):
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass
class Clean:
    """A row's values after the per-row checks."""

    contact_id: str  # "" when the row has none
    salesforce_id: str | None  # 18 characters, or None
    name: str
    email: str
    crm_account: str


@dataclass
class Outcome:
    contact: Contact
    action: str  # CREATED or UPDATED


@dataclass
class Batch:
    """The account's contacts that rows of one batch refer to (plus the batch's new ones)."""

    by_contact_id: dict
    by_salesforce_id: dict


def _salesforce_18(value):
    try:
        return to_18(value)
    except InvalidSalesforceId:
        return None


def clean(values):
    """Per-row checks that need no database; raises RowFailure."""
    # Names go into emails and CSV downloads as one line (helpers.one_line_text).
    name = one_line(values.get("name", ""))
    contact_id = values.get("contact_id", "")
    raw_sf = values.get("salesforce_id", "")
    email = values.get("email", "")
    crm_account = one_line(values.get("crm_account", ""))
    if not name:
        raise RowFailure(NAME_MISSING, "The Name cell is empty. Fill in the contact's full name.")
    if len(name) > _NAME_MAX:
        raise RowFailure(
            VALUE_TOO_LONG,
            f"The name is {len(name)} characters long; at most {_NAME_MAX} fit. Shorten it.",
        )
    if contact_id and not _CONTACT_ID.match(contact_id):
        what = (
            f"{len(contact_id)} characters long"
            if len(contact_id) != CONTACT_ID_LENGTH
            else "not only letters and digits"
        )
        raise RowFailure(
            CONTACT_ID_INVALID,
            f"The contact id '{contact_id}' is {what}: a contact id is exactly "
            f"{CONTACT_ID_LENGTH} letters and digits. Fix it, or leave the cell empty to "
            "match by Salesforce id or create a new contact.",
        )
    salesforce_id = None
    if raw_sf:
        try:
            salesforce_id = to_18(raw_sf)
        except InvalidSalesforceId as error:
            raise RowFailure(
                SALESFORCE_ID_INVALID,
                f"Invalid Salesforce id: {error} Copy the id again from Salesforce (15 or 18 "
                "characters), or leave the cell empty.",
            ) from error
    if email:
        try:
            if len(email) > _EMAIL_MAX:
                raise ValidationError("too long")
            validate_email(email)
            validate_header_safe(email)
        except ValidationError as error:
            raise RowFailure(
                EMAIL_INVALID,
                f"'{email}' is not a valid email address. Fix it (name@example.com), or leave "
                "the cell empty.",
            ) from error
    if len(crm_account) > _ACCOUNT_MAX:
        raise RowFailure(
            VALUE_TOO_LONG,
            f"The account name is {len(crm_account)} characters long; at most {_ACCOUNT_MAX} "
            "fit. Shorten it.",
        )
    return Clean(contact_id, salesforce_id, name, email, crm_account)


class RowChecker:
    """The row rules, shared by the dry run and the real run. Remembers which contacts and ids
    the file has named so far (for the duplicate rule), one entry per id."""

    def __init__(self, account):
        self.account = account
        self.seen = {}  # ("cid" | "sf", id) -> line where it first appeared

    def load_batch(self, rows):
        contact_ids, salesforce_ids = set(), set()
        for _line, values in rows:
            value = values.get("contact_id", "")
            if _CONTACT_ID.match(value):
                contact_ids.add(value)
            key = _salesforce_18(values.get("salesforce_id", ""))
            if key:
                salesforce_ids.add(key)
        contacts = []
        if contact_ids or salesforce_ids:
            contacts = list(
                Contact.objects.filter(portal_account=self.account).filter(
                    Q(contact_id__in=contact_ids) | Q(salesforce_id__in=salesforce_ids)
                )
            )
        return Batch(
            by_contact_id={contact.contact_id: contact for contact in contacts},
            by_salesforce_id={c.salesforce_id: c for c in contacts if c.salesforce_id},
        )

    @staticmethod
    def _keys(row, contact=None):
        keys = set()
        if row.contact_id:
            keys.add(("cid", row.contact_id))
        if row.salesforce_id:
            keys.add(("sf", row.salesforce_id))
        if contact is not None:
            keys.add(("cid", contact.contact_id))
            if contact.salesforce_id:
                keys.add(("sf", contact.salesforce_id))
        return keys

    def mark_seen(self, line, values, batch):
        """Remember a row done by an earlier run (resume) without checking it again."""
        try:
            row = clean(values)
        except RowFailure:
            return
        contact = self._find(row, batch)
        for key in self._keys(row, contact):
            self.seen.setdefault(key, line)

    def _find(self, row, batch):
        if row.contact_id and row.contact_id in batch.by_contact_id:
            return batch.by_contact_id[row.contact_id]
        if row.salesforce_id:
            return batch.by_salesforce_id.get(row.salesforce_id)
        return None

    def check(self, line, values, batch):
        """What the row does: (Clean, existing contact or None); raises RowFailure."""
        row = clean(values)
        by_id = batch.by_contact_id.get(row.contact_id) if row.contact_id else None
        by_sf = batch.by_salesforce_id.get(row.salesforce_id) if row.salesforce_id else None
        contact = by_id or by_sf
        if row.salesforce_id and by_sf is not None and by_sf is not contact:
            raise RowFailure(
                ID_CONFLICT,
                f"The contact id '{row.contact_id}' is {contact.name}, but the Salesforce id "
                f"'{values['salesforce_id']}' is {by_sf.name} ({by_sf.contact_id}). Fix one of "
                "the ids, or leave the Salesforce id empty.",
            )
        if contact is not None and row.contact_id and contact.contact_id != row.contact_id:
            raise RowFailure(
                ID_CONFLICT,
                f"The Salesforce id '{values['salesforce_id']}' is {contact.name}, whose contact "
                f"id is {contact.contact_id}, not '{row.contact_id}'. Fix the contact id, or "
                "leave it empty.",
            )
        if (
            contact is not None
            and row.salesforce_id
            and contact.salesforce_id
            and contact.salesforce_id != row.salesforce_id
        ):
            raise RowFailure(
                ID_CONFLICT,
                f"{contact.name} ({contact.contact_id}) has the Salesforce id "
                f"{contact.salesforce_id}, not '{values['salesforce_id']}'. Fix the Salesforce "
                "id, or leave it empty.",
            )
        keys = self._keys(row, contact)
        earlier = sorted(self.seen[key] for key in keys if key in self.seen)
        if earlier:
            who = f"{contact.name} ({contact.contact_id})" if contact else "This contact"
            raise RowFailure(
                DUPLICATE_ROW,
                f"{who} is already on line {earlier[0]} of this file. Remove one of the rows.",
            )
        for key in keys:
            self.seen[key] = line
        return row, contact


def _remember_new(batch, contact):
    batch.by_contact_id[contact.contact_id] = contact
    if contact.salesforce_id:
        batch.by_salesforce_id[contact.salesforce_id] = contact


def _new_contact(account, row):
    contact = Contact(
        portal_account=account,
        salesforce_id=row.salesforce_id,
        name=row.name,
        email=row.email,
        crm_account_name=row.crm_account,
        source=Contact.Source.IMPORT,
    )
    if row.contact_id:
        contact.contact_id = row.contact_id
    return contact


def open_and_map(job_or_file, mapping=None):
    """Read the header and map the columns: (CsvFile, mapping). Raises CsvError/MappingError."""
    csv_file = read_csv(
        open_source(job_or_file), max_bytes=max_bytes(), example_header=EXAMPLE_HEADER
    )
    choices = dict(mapping) if mapping else None
    return csv_file, map_columns(csv_file.header, FIELDS, choices)


@dataclass
class ValidationReport(DryRunReport):
    would_update: int = 0

    reason_labels = REASON_LABELS

    def example(self, values):
        return {
            "contact_id": values.get("contact_id", ""),
            "salesforce_id": values.get("salesforce_id", ""),
            "name": values.get("name", ""),
        }


def validate(
    job_or_file, account, mapping=None, options=None, *, batch_size=BATCH_SIZE, progress=None
):
    """The dry run: what `apply` would do with this file, writing nothing but the job's status,
    mapping and row count (when given a job, see pipeline.end_dry_run). `progress(rows
    checked)` is called after each batch. Raises CsvError / MappingError for a file that cannot
    be imported at all."""
    try:
        csv_file, mapping = open_and_map(job_or_file, mapping)
    except (CsvError, MappingError) as error:
        if isinstance(job_or_file, ImportJob):
            mark_failed(job_or_file, error)
        raise
    checker = RowChecker(account)
    report = ValidationReport(mapping=mapping, encoding=csv_file.encoding_label)
    try:
        for rows in batches(csv_file, mapping, batch_size):
            batch = checker.load_batch(rows)
            for line, values in rows:
                report.total_rows += 1
                try:
                    row, contact = checker.check(line, values, batch)
                except RowFailure as failure:
                    report.add_failure(line, values, failure)
                    continue
                if contact is None:
                    report.would_create += 1
                    _remember_new(batch, _new_contact(account, row))
                else:
                    report.would_update += 1
            if progress is not None:
                progress(report.total_rows)
    finally:
        if isinstance(job_or_file, ImportJob):
            job_or_file.source_file.close()
    end_dry_run(
        job_or_file,
        mapping=mapping,
        options=normalised_options(options),
        total_rows=report.total_rows,
    )
    return report


class ContactResultFiles(ResultFiles):
    """The result files of a contacts job: same storage, byte-mark and resume rules, with the
    contacts columns."""

    success_header = SUCCESS_HEADER
    failure_header = FAILURE_HEADER

    def done(self, contact, action):
        self.success.write([contact.contact_id, contact.salesforce_id or "", contact.name, action])

    def failed(self, line, values, code, reason):
        self.failure.write([line, *(values.get(f.name, "") for f in FIELDS), code, reason])


def apply(job, *, batch_size=BATCH_SIZE, progress=None, lease=None):
    """Upsert the contacts of `job`'s file, resuming after `job.last_processed_line` (see
    imports.pipeline.run for progress, failure handling and `lease`). Returns the job."""
    return pipeline.run(
        job,
        open_and_map=open_and_map,
        normalise_options=normalised_options,
        make_checker=lambda account, options: RowChecker(account),
        result_files=ContactResultFiles,
        apply_batch=lambda job, checker, batch, rows, results: _apply_batch(
            job, job.portal_account, checker, batch, rows, results
        ),
        batch_size=batch_size,
        progress=progress,
        loads=Contact,
        lease=lease,
    )


NEW_CONTACT_FIELDS = (
    "portal_account_id",
    "contact_id",
    "salesforce_id",
    "name",
    "email",
    "crm_account_name",
    "source",
)


UPDATED_FIELDS = ("name", "email", "crm_account_name", "salesforce_id", "updated_at")


def _new_row(contact):
    values = (getattr(contact, name) for name in NEW_CONTACT_FIELDS)
    return tuple(str(value) if isinstance(value, str) else value for value in values)  # choices


def _audited(contact):
    """The values of a contact that an import sets, as its audit event shows them."""
    return {
        "contact_id": contact.contact_id,
        "salesforce_id": contact.salesforce_id,
        "name": contact.name,
        "email": contact.email,
        "crm_account_name": contact.crm_account_name,
    }


def _apply_batch(job, account, checker, batch, rows, results):
    to_create, to_update, outcomes = [], [], []
    events = []  # (line, action, contact, before)
    for line, values in rows:
        try:
            row, contact = checker.check(line, values, batch)
        except RowFailure as failure:
            outcomes.append((line, values, failure))
            continue
        if contact is None:
            contact = _new_contact(account, row)
            _remember_new(batch, contact)
            to_create.append(contact)
            outcomes.append((line, values, Outcome(contact, CREATED)))
            events.append((line, "create_contact", contact, {}))
        else:
            before = _audited(contact)
            contact.name = row.name
            contact.email = row.email
            contact.crm_account_name = row.crm_account
            if row.salesforce_id and not contact.salesforce_id:
                contact.salesforce_id = row.salesforce_id
            # deleted_at is left as it is: a deleted contact stays deleted.
            contact.updated_at = timezone.now()
            to_update.append(contact)  # once: the duplicate rule stops a second row
            outcomes.append((line, values, Outcome(contact, UPDATED)))
            events.append((line, "update_contact", contact, before))
    with batch_transaction():
        insert(Contact, NEW_CONTACT_FIELDS, [_new_row(contact) for contact in to_create])
        update(
            Contact, to_update, ["name", "email", "crm_account_name", "salesforce_id", "updated_at"]
        )
        _record_events(job, account, events)
        for line, values, outcome in outcomes:
            if isinstance(outcome, RowFailure):
                job.failed += 1
                results.failed(line, values, outcome.code, outcome.reason)
            else:
                if outcome.action == CREATED:
                    job.created += 1
                results.done(outcome.contact, outcome.action)
            job.processed += 1
            job.last_processed_line = line
        results.commit_point()
        save_progress(job)


def _record_events(job, account, events):
    """An audit event per contact created or updated, written with one bulk insert."""
    audit.record_many(
        [
            (
                action,
                None,
                str(contact),
                before,
                _audited(contact),
                f"CSV import {job.pk}, line {line}",
            )
            for line, action, contact, before in events
        ],
        by=job.started_by,
        portal_account=account,
    )


__all__ = [
    "FIELDS",
    "REASON_LABELS",
    "apply",
    "failure_counts",
    "normalised_options",
    "updated_count",
    "validate",
]
