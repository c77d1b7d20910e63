"""Validate and apply stages of the portal-user CSV import (read and map are in csv_reader and
column_mapping). No HTTP here: the browser wizard (Celery task) and `manage.py
import_portal_users` both call these functions.

- `validate(...)` is the dry run: every row goes through the same `RowChecker` as in `apply`, and
  nothing is written. It reports how many users would be created, the failures per reason code
  (with the first rows of each) and whether the licenses suffice.
- `apply(job, ...)` creates the users through `accounts.bulk_invites.invite_many` (audit event and,
  with the activation option, an invitation in the outbox for each), a batch of rows per
  transaction: the rows are checked, then the batch's users are written with a few bulk inserts.
  The job's counts, `last_processed_line` and the committed size of the result files are saved in
  the same transaction as the batch, so a run that is killed resumes after the last committed
  row and nobody is created twice (the one-user-per-contact constraint is the last guard).

Each row ends created or failed with one reason code and a plain reason with a suggested fix.
A contact that appears twice in the file fails the second time ("duplicate_row"), whether the
first row was created or not. The contacts seen so far, with their first line, live in memory
for the whole run in a compact map (imports.first_lines: about 25 MB for a million contacts).
"""

from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from typing import NamedTuple

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from accounts import bulk_invites, expiry, licenses, lifecycle, role_names
from accounts.errors import NoLicensesLeft
from accounts.models import User, UserType
from accounts.models.user import access_end_problem
from accounts.role_names import AccountRoles, RoleNameError
from contacts.models import CONTACT_ID_LENGTH, Contact
from contacts.salesforce_ids import looks_like_salesforce_id, to_18
from helpers.bulk_sql import any_of
from imports import pipeline
from imports.column_mapping import (
    PORTAL_USER_FIELDS,
    PORTAL_USER_FIELDS_WITH_DEFAULT_ROLE,
    MappingError,
    map_columns,
)
from imports.csv_reader import CsvError, read_csv
from imports.first_lines import FirstLines
from imports.models import ImportJob
from imports.pipeline import (
    DryRunReport,
    batch_transaction,
    batches,
    end_dry_run,
    mark_failed,
    max_bytes,
    open_source,
    save_progress,
)
from imports.result_files import ResultFiles

# No user type option: each row's role decides its user's type (and which licenses it takes).
DEFAULT_OPTIONS = {"send_activation": False}
# Rows per batch (one transaction, a few queries and three COPYs): big enough that the per-batch
# queries (seats counted under the account lock, lookups) cost little, small enough that the
# account row is locked for well under a second at a time and progress moves every second.
BATCH_SIZE = 5000

# Reason codes, in the order rows are checked (a row gets the first that applies).
MISSING_CONTACT_ID = "missing_contact_id"
CONTACT_NOT_FOUND = "contact_not_found"
DUPLICATE_ROW = "duplicate_row"
USER_EXISTS = "user_exists"
EMPTY_ROLE_CELL = "The Role cell is empty. Fill in one of: {active}."
ROLE_MISSING = role_names.MISSING
ROLE_NOT_FOUND = role_names.NOT_FOUND
ROLE_INACTIVE = role_names.INACTIVE
EMPLOYEE_ROLE = "employee_role"
NO_VALID_EMAIL = "no_valid_email"
NO_LICENSES = "no_licenses"
NOT_ALLOWED = "not_allowed"  # any other rule of accounts.lifecycle
BAD_ACCESS_END = "bad_access_end"

REASON_LABELS = {
    MISSING_CONTACT_ID: "Contact id missing",
    CONTACT_NOT_FOUND: "Contact not found",
    DUPLICATE_ROW: "Duplicate row in file",
    USER_EXISTS: "User already exists",
    ROLE_MISSING: "Role missing",
    ROLE_NOT_FOUND: "Role not found",
    ROLE_INACTIVE: "Role inactive",
    EMPLOYEE_ROLE: "Employee role",
    NO_VALID_EMAIL: "Contact has no valid email",
    NO_LICENSES: "No licenses left",
    NOT_ALLOWED: "Not allowed",
    BAD_ACCESS_END: "Access end date not valid",
}


def normalised_options(options):
    """The options the import reads. A "user_type" saved on a job from before roles had types
    is dropped: the rows' roles decide. "default_role" (a role's id, only when chosen) is the
    role of rows without one: the file has no Role column, or a row's Role cell is empty."""
    merged = {**DEFAULT_OPTIONS, **(options or {})}
    normalised = {"send_activation": bool(merged["send_activation"])}
    default_role = merged.get("default_role")
    if default_role:
        normalised["default_role"] = int(default_role)
    return normalised


def fields_for(options):
    """The columns of a file imported with `options`: Role may be missing when the options
    give a role for rows without one."""
    if normalised_options(options).get("default_role"):
        return PORTAL_USER_FIELDS_WITH_DEFAULT_ROLE
    return PORTAL_USER_FIELDS


class RowFailure(Exception):
    def __init__(self, code, reason):
        super().__init__(reason)
        self.code = code
        self.reason = reason


class ContactRow(NamedTuple):
    """The columns of a contact that the rules read (a light stand-in for `Contact`, which
    `bulk_invites.invite_many` accepts)."""

    pk: int
    portal_account_id: int
    contact_id: str
    salesforce_id: str | None
    name: str
    email: str
    deleted_at: datetime | None
    crm_account_name: str  # the users' copy (accounts.user_crm_accounts), given with the insert
    has_user: bool


@dataclass
class Batch:
    """Contacts and users looked up once for a batch of rows."""

    by_contact_id: dict
    by_salesforce_id: dict
    with_user: set  # pks of contacts that already have a portal user
    invites: object = None  # accounts.bulk_invites.plan of the batch's rows (the real run)


class RowChecker:
    """The row rules, shared by the dry run and the real run. Holds the account's roles and the
    contacts seen so far in the file (for the duplicate rule)."""

    def __init__(self, account, options):
        self.account = account
        self.options = options
        self.roles = AccountRoles(account)
        self.default_role_id = options.get("default_role")
        self.seen = FirstLines()  # contact pk -> line where it first appeared
        self.today = timezone.now().date()  # end dates must be after it (one run, one today)
        self.planned_emails = set()  # of the batch planned last (see _checked_rows)

    @staticmethod
    def _salesforce_key(value):
        if len(value) == 15 and looks_like_salesforce_id(value):
            return to_18(value)
        if len(value) == 18 and looks_like_salesforce_id(value):
            return value
        return None

    def load_batch(self, rows):
        """Look up every contact of `rows` (`(line, values)` pairs) and which have users, in one
        query of the few columns the rules read."""
        contact_ids, salesforce_ids = set(), set()
        for _line, values in rows:
            value = values["contact_id"]
            if not value:
                continue
            if len(value) == CONTACT_ID_LENGTH:
                contact_ids.add(value)
            key = self._salesforce_key(value)
            if key:
                salesforce_ids.add(key)
        contacts = []
        if contact_ids or salesforce_ids:
            wanted = Q()
            if contact_ids:
                wanted |= Q(contact_id__in=any_of(contact_ids))
            if salesforce_ids:
                wanted |= Q(salesforce_id__in=any_of(salesforce_ids))
            found = (
                Contact.objects.filter(wanted, portal_account=self.account)
                .annotate(has_user=Exists(User.objects.filter(contact=OuterRef("pk"))))
                .order_by()
                .values_list(*ContactRow._fields)
            )
            # tuple.__new__ straight from C: ContactRow._make is a Python call per contact.
            contacts = list(map(partial(tuple.__new__, ContactRow), found))
        return Batch(
            by_contact_id={contact.contact_id: contact for contact in contacts},
            by_salesforce_id={c.salesforce_id: c for c in contacts if c.salesforce_id},
            with_user={contact.pk for contact in contacts if contact.has_user},
        )

    def find_contact(self, value, batch):
        contact = batch.by_contact_id.get(value)
        if contact is None:
            key = self._salesforce_key(value)
            contact = batch.by_salesforce_id.get(key) if key else None
        return contact

    def mark_seen(self, line, values, batch):
        """Remember a row's contact without checking it (rows already done in a resumed run)."""
        contact = self.find_contact(values["contact_id"], batch) if values["contact_id"] else None
        if contact is not None:
            self.seen.setdefault(contact.pk, line)

    def check(self, line, values, batch, *, email=True):
        """The contact and role for a row that may be created; raises RowFailure otherwise.
        `email=False` leaves the last rule (a valid email when activation emails are on) to the
        caller: the import's `bulk_invites.invite_many` checks it anyway, and it is the costliest
        rule (Django's email validator, about 10 us a row)."""
        value = values["contact_id"]
        if not value:
            raise RowFailure(
                MISSING_CONTACT_ID,
                "The ContactId cell is empty. Fill in the contact's 19-character id "
                "(or its 15- or 18-character Salesforce id).",
            )
        contact = self.find_contact(value, batch)
        if contact is None:
            raise RowFailure(
                CONTACT_NOT_FOUND,
                f"No contact with the id '{value}' in {self.account.name}. Check the id: "
                "use the 19-character contact id or the contact's Salesforce id.",
            )
        first_line = self.seen.setdefault(contact.pk, line)
        if first_line != line:
            raise RowFailure(
                DUPLICATE_ROW,
                f"{contact.name} ({contact.contact_id}) is already on line {first_line} of this "
                "file. Remove one of the rows.",
            )
        if contact.deleted_at is not None:
            raise RowFailure(
                CONTACT_NOT_FOUND,
                f"Contact '{value}' ({contact.name}) was not found (deleted in the CRM). Restore "
                "the contact in the CRM, wait for the sync, and import the row again.",
            )
        if contact.pk in batch.with_user:
            raise RowFailure(
                USER_EXISTS,
                f"User already exists: {contact.name} already has a portal user. Remove the row; "
                "to change the user's role, use the user's page in the console.",
            )
        role = self.check_role(values["role"])
        if not role.needs_contact:
            raise RowFailure(
                EMPLOYEE_ROLE,
                f"The role '{role.name}' is an Employee role, and employees are not CRM "
                "contacts, so the import cannot create them. Give the row a partner or customer "
                "role, or add employees on the Users page.",
            )
        self.access_end(values)
        if email and self.options["send_activation"] and not lifecycle.valid_email(contact.email):
            raise self.no_valid_email(contact)
        return contact, role

    def access_end(self, values):
        """The row's access end date (None: the optional cell is empty); RowFailure when it is
        no date, or one the rules refuse (lifecycle.set_access_end's)."""
        cell = (values.get("access_ends_on") or "").strip()
        if not cell:
            return None
        try:
            ends_on = date.fromisoformat(cell) if len(cell) == 10 else None
        except ValueError:
            ends_on = None
        if ends_on is None:
            raise RowFailure(
                BAD_ACCESS_END,
                f"The AccessEndsOn cell '{cell}' is not a date. Write it as YYYY-MM-DD (for "
                "example 2027-01-31), or leave it empty for no end.",
            )
        problem = access_end_problem(ends_on, self.today)
        if problem:
            raise RowFailure(BAD_ACCESS_END, f"AccessEndsOn {cell}: {problem}")
        return ends_on

    @staticmethod
    def no_valid_email(contact):
        shown = f"'{contact.email}'" if contact.email else "none"
        return RowFailure(
            NO_VALID_EMAIL,
            f"{contact.name} has no valid email address ({shown}), so the activation email "
            "cannot be sent. Fix the email in the CRM, or import without the activation email.",
        )

    def check_role(self, name):
        if not name and self.default_role_id:
            return self.default_role()
        try:
            return self.roles.find(name, missing=EMPTY_ROLE_CELL)
        except RoleNameError as error:
            raise RowFailure(error.code, error.message) from None

    def default_role(self):
        """The role chosen for rows without one, as the rules see it now (it may have been
        deleted or deactivated since it was chosen)."""
        role = self.roles.by_pk.get(self.default_role_id)
        if role is None:
            raise RowFailure(
                ROLE_NOT_FOUND,
                "The role chosen for rows without one no longer exists. Choose another "
                "(Map columns step, or --role), or fill in the Role cell.",
            )
        if not role.active:
            raise RowFailure(
                ROLE_INACTIVE,
                f"The role chosen for rows without one, '{role.name}', is inactive. Make it "
                "active, choose another, or fill in the Role cell.",
            )
        return role


def _no_licenses_reason(message):
    return (
        f"{message} Free seats (disable users or raise the licenses), then import this row again."
    )


def open_and_map(job_or_file, mapping=None, options=None):
    """Read the header and map the columns: (CsvFile, mapping). Raises CsvError/MappingError.
    `options` (a job's own by default) say whether the file may lack a Role column."""
    if options is None and isinstance(job_or_file, ImportJob):
        options = job_or_file.options
    fields = fields_for(options)
    csv_file = read_csv(open_source(job_or_file), max_bytes=max_bytes())
    if mapping:
        choices = {name: index for name, index in mapping.items()}
        mapping = map_columns(csv_file.header, fields, choices)
    else:
        mapping = map_columns(csv_file.header, fields)
    return csv_file, mapping


@dataclass
class ValidationReport(DryRunReport):
    # Per user type, from the rows' roles: {"partner": {"needed": 5, "free": 7}, ...}; a type
    # no valid row needs is left out.
    licenses: dict = field(default_factory=dict)

    reason_labels = REASON_LABELS

    @property
    def license_lines(self):
        """What the review page and the command say about each type's licenses."""
        return [
            {
                "label": UserType(user_type).label,
                "needed": seats["needed"],
                "free": seats["free"],
                "enough": seats["needed"] <= seats["free"],
            }
            for user_type in UserType.values
            if (seats := self.licenses.get(user_type))
        ]

    @property
    def licenses_suffice(self):
        return all(line["enough"] for line in self.license_lines)

    def example(self, values):
        return {"contact_id": values["contact_id"], "role": values["role"]}


def validate(
    job_or_file, account, mapping=None, options=None, *, batch_size=BATCH_SIZE, progress=None
):
    """The dry run: what `apply` would do with this file, writing nothing but the job's status
    and row count (when given a job, see pipeline.end_dry_run). `progress(rows checked)` is
    called after each batch. Raises CsvError / MappingError for a file that cannot be imported
    at all."""
    options = normalised_options(options)
    try:
        csv_file, mapping = open_and_map(job_or_file, mapping, options)
    except (CsvError, MappingError) as error:
        if isinstance(job_or_file, ImportJob):
            mark_failed(job_or_file, error)
        raise
    checker = RowChecker(account, options)
    report = ValidationReport(mapping=mapping, encoding=csv_file.encoding_label)
    seats = _Seats(account)
    try:
        for rows in batches(csv_file, mapping, batch_size):
            _check_batch(report, checker, seats, rows)
            if progress is not None:
                progress(report.total_rows)
    finally:
        if isinstance(job_or_file, ImportJob):
            job_or_file.source_file.close()
    end_dry_run(job_or_file, mapping=mapping, options=options, total_rows=report.total_rows)
    return report


class _Seats:
    """The free seats of each user type as the dry run goes, counted when a row first needs
    the type (bulk_invites.invite_many counts them the same way, per batch, under the lock)."""

    def __init__(self, account):
        self.account = account
        self.limit, self.used = {}, {}

    def take(self, user_type, report):
        """Count a row needing a seat of `user_type`; a RowFailure when none is left."""
        if user_type not in self.limit:
            self.limit[user_type] = self.account.licenses_for(user_type)
            self.used[user_type] = licenses.seats_used(self.account, user_type)
            free = max(self.limit[user_type] - self.used[user_type], 0)
            report.licenses[user_type] = {"needed": 0, "free": free}
        seats = report.licenses[user_type]
        seats["needed"] += 1
        if seats["needed"] <= seats["free"]:
            return None
        limit = self.limit[user_type]
        in_use = max(self.used[user_type], limit)
        message = f"No {UserType(user_type).label} licenses left: {in_use} of {limit} in use."
        return RowFailure(NO_LICENSES, _no_licenses_reason(message))


def _check_batch(report, checker, seats, rows):
    """One batch of the dry run: each row checked, counted or added to the failures."""
    batch = checker.load_batch(rows)
    for line, values in rows:
        report.total_rows += 1
        try:
            _contact, role = checker.check(line, values, batch)
        except RowFailure as failure:
            report.add_failure(line, values, failure)
            continue
        refused = seats.take(role.user_type, report)
        if refused is None:
            report.would_create += 1
        else:
            report.add_failure(line, values, refused)


def apply(job, *, batch_size=BATCH_SIZE, progress=None, lease=None):
    """Create the users of `job`'s file, resuming after `job.last_processed_line` (see
    imports.pipeline.run for progress, failure handling and `lease`). Returns the job."""
    return pipeline.run(
        job,
        open_and_map=open_and_map,
        normalise_options=normalised_options,
        make_checker=RowChecker,
        result_files=ResultFiles,
        check_rows=partial(_checked_rows, by=job.started_by),
        # The lookups read contacts, which this import never writes, and whether they have a
        # user: one created by the batch before is a duplicate row of the file.
        read_ahead_safe=True,
        apply_batch=_apply_batch,
        batch_size=batch_size,
        progress=progress,
        loads=User,
        lease=lease,
    )


def _checked_rows(checker, batch, rows, *, by):
    """Each row as `(line, values, outcome)`: its RowFailure, or `(contact, role, access end)`
    for a row that may be created. Only the file and the batch's lookup are read, so this runs
    a batch ahead of the writes (imports.read_ahead), and so does the plan of the batch's
    invitations (accounts.bulk_invites.plan: the rest of the rules, and the writes built)."""
    checked, ready = [], []
    for line, values in rows:
        try:
            # invite_many checks the email; see the refused rows in _apply_batch.
            contact, role = checker.check(line, values, batch, email=False)
            checked.append((line, values, (contact, role, checker.access_end(values))))
            ready.append((contact, role))
        except RowFailure as failure:
            checked.append((line, values, failure))
    if ready:
        send_email, in_flight = checker.options["send_activation"], checker.planned_emails
        batch.invites = bulk_invites.plan(
            checker.account, ready, by=by, send_email=send_email, in_flight=in_flight
        )
        # The batch before this one is committed by the time the next is planned; this one
        # may still be written then.
        checker.planned_emails = batch.invites.emails
    return checked


def _apply_batch(job, checker, batch, rows, results):
    """Create the users of the batch's rows that passed the checks (`_checked_rows`) with one
    `bulk_invites.invite_many`, then write each row's outcome in file order, all in the batch's
    transaction (with the job's counts and `last_processed_line`)."""
    account, options = job.portal_account, job.options
    with batch_transaction():
        outcomes = {}  # line -> RowFailure or the new user's id
        ready = []  # (contact, role)
        line_of = {}  # contact pk -> line
        role_of = {}  # line -> the role given (the row's, or the default for an empty cell)
        ends = {}  # contact pk -> access end date
        for line, _values, outcome in rows:
            if isinstance(outcome, RowFailure):
                outcomes[line] = outcome
                continue
            contact, role, ends_on = outcome
            ready.append((contact, role))
            line_of[contact.pk] = line
            role_of[line] = role.name
            if ends_on:
                ends[contact.pk] = ends_on
        if ready:
            created, refused = bulk_invites.invite_many(
                account,
                ready,
                by=job.started_by,
                send_email=options["send_activation"],
                plan=batch.invites,
            )
            for (contact, _role), user_id in created:
                outcomes[line_of[contact.pk]] = user_id
                batch.with_user.add(contact.pk)
            expiry.set_many(
                account,
                {user_id: ends[c.pk] for (c, _role), user_id in created if c.pk in ends},
                by=job.started_by,
            )
            for (contact, _role), error in refused:
                if options["send_activation"] and not lifecycle.valid_email(contact.email):
                    # The rule the checker left out, and the first that applies to the row.
                    outcomes[line_of[contact.pk]] = checker.no_valid_email(contact)
                else:
                    outcomes[line_of[contact.pk]] = _row_failure(error)
        for line, values, _checked in rows:
            outcome = outcomes[line]
            if isinstance(outcome, RowFailure):
                job.failed += 1
                results.failed(
                    line, values["contact_id"], values["role"], outcome.code, outcome.reason
                )
            else:
                job.created += 1
                results.created(values["contact_id"], role_of[line], outcome)
            job.processed += 1
            job.last_processed_line = line
        results.commit_point()
        save_progress(job)


def _row_failure(error):
    """The reason code and reason of a row `bulk_invites.invite_many` refused."""
    if isinstance(error, NoLicensesLeft):
        return RowFailure(NO_LICENSES, _no_licenses_reason(str(error)))
    message = str(error)
    code = USER_EXISTS if message.startswith("User already exists") else NOT_ALLOWED
    return RowFailure(code, message)
