"""Invitations by the thousand (the CSV import): `invite_many`, and `plan` which does every part
of it that needs no lock, ahead of time.

Why a plan: an import batch's rows were checked and its three COPYs (users, audit events,
outbox rows) built in Python while the batch held the account's row lock, and PostgreSQL sat
idle meanwhile; then Python waited while PostgreSQL wrote. The import's read-ahead thread
(imports.read_ahead) now plans the next batch while the current one is written, so under the
lock only the seats are counted, the roles read again, and the prepared COPYs sent. A plan
is used only if what it assumed still holds under the lock (the same roles, as active and of
the same type and name, and seats for every row); otherwise the batch is planned again there,
as before. What the plan read without the lock (whether an email is taken) can go stale: the
unique constraints are the last guard, as for a concurrent invite (see `invite_many`).
"""

from collections import Counter
from dataclasses import dataclass, field

from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import audit, licenses
from accounts.errors import LifecycleError, NoLicensesLeft
from accounts.lifecycle import check_role, email_checker, invite, resolve_contact
from accounts.models import (
    AuditEvent,
    EmailKind,
    OutboxEmail,
    PortalAccount,
    Role,
    User,
    UserKind,
    UserState,
    UserType,
)
from contacts.models import Contact
from helpers.bulk_sql import any_of, copy_ahead_possible, insert, prepare_copy, write_copy
from mail import outbox

USER_FIELDS = (
    "kind",
    "portal_account_id",
    "user_type",
    "contact_id",
    "role_id",
    "name",
    "email",
    "state",
    "invited_at",
    "last_invited_at",
    "password",
    "crm_account_name",
)
OUTBOX_FIELDS = ("portal_account_id", "user_id", "to_email", "kind", "context", "queued_at")


def invite_many(portal_account, rows, *, by, send_email, ip=None, plan=None):
    """`lifecycle.invite` for a batch of contacts, in one transaction and a handful of queries:
    what the CSV import uses. `rows` are `(contact, role)` pairs the caller has checked already
    (contact live and without a user, role active, a valid email when `send_email`); each is
    checked again here with in-memory rules only. A contact is a `Contact` or any object with
    its `pk`, `portal_account_id`, `name`, `email` and `deleted_at`, and `crm_account_name`
    where it has one (the import passes light rows: building 100,000 model instances costs more
    than inserting them; the name is the user's copy, accounts.user_crm_accounts, which the
    database fills where it is missing and checks where it is given). Each user gets their
    role's user type, read again under the account lock. `plan` is what `plan(...)` made of
    the same rows ahead of time.

    The account row is locked once and the seats of each user type counted once; the rows
    past a type's licenses are refused with the message `invite` would give. Users, audit
    events and outbox rows are written with a bulk insert each (COPY on PostgreSQL, see
    helpers.bulk_sql), and one `on_commit` hands every outbox row to Celery in one message. The
    one-user-per-contact and one-email-per-account constraints stay the last guard: if the bulk
    insert breaks one (a concurrent invite or import), the batch is done again row by row with
    `invite`, which reports such rows one by one.

    Returns `(created, refused)`: `[(row, new user's id)]` in the order of the rows, and
    `[(row, error)]` with a `LifecycleError` (a `NoLicensesLeft` for seats) whose `str()` is the
    message `invite` would have raised for that row.
    """
    rows = list(rows)
    if not rows:
        return [], []
    with transaction.atomic():
        try:
            with transaction.atomic():
                return _invite_locked(portal_account, rows, by, send_email, ip, plan)
        except IntegrityError:
            pass  # rolled back to before the batch; done again row by row below
        created, refused = [], []
        for row in rows:
            contact, role = row
            try:
                if contact is not None and not isinstance(contact, Contact):
                    contact = Contact.objects.filter(pk=contact.pk).first()
                    if contact is None:
                        raise LifecycleError("The contact no longer exists in the CRM mirror.")
                user = invite(
                    portal_account,
                    role=role,
                    by=by,
                    contact=contact,
                    send_email=send_email,
                    ip=ip,
                )
            except LifecycleError as error:
                refused.append((row, error))
            else:
                created.append((row, user.pk))
        return created, refused


@dataclass
class Plan:
    """A batch's invitations decided and, on PostgreSQL, its COPYs built (`plan`)."""

    rows: list
    by: object
    send_email: bool
    ip: object
    roles: dict  # role pk -> (account, name, user type, active) as the plan read them
    allowed: list  # (row, contact, role, name, email), in the order of the rows
    refused: list  # (row, LifecycleError)
    writes: "_Writes | None" = field(default=None)
    # An email also planned by a batch still being written when this plan was made: whether
    # it is taken is known only under the lock (the batch planned again there).
    unsure: bool = False

    @property
    def emails(self):
        return {email for *_entry, email in self.allowed if email}

    def holds(self, rows, by, send_email, ip, roles_now):
        """Whether this plan is still the one to write, with the roles as read under the lock."""
        return (
            not self.unsure
            and rows == self.rows
            and (by, send_email, ip) == (self.by, self.send_email, self.ip)
            and {pk: _role_key(role) for pk, role in roles_now.items()} == self.roles
        )


def plan(portal_account, rows, *, by, send_email, ip=None, roles=None, in_flight=()):
    """Every rule of `invite_many` that needs no lock, and the writes of the rows it allows,
    with ids drawn (PostgreSQL). `roles` ({pk: Role}) are the roles as read under the lock;
    without them, each row's own role (as the import's checker read it). `in_flight`: the
    emails of a batch being written meanwhile, which the lookup of taken emails cannot see
    yet."""
    rows = list(rows)
    if roles is None:
        roles = {role.pk: role for _contact, role in rows if role is not None}
    refused, ready, emails_in_batch = [], [], set()
    checked_email = email_checker()
    for row in rows:
        contact, role = row
        try:
            check_role(portal_account, role)
            role = roles.get(role.pk)
            if role is None:
                raise LifecycleError(f"Role '{row[1].name}' was deleted meanwhile.")
            check_role(portal_account, role)
            if contact is None:
                raise LifecycleError("Pick a contact.")
            contact = resolve_contact(portal_account, role, contact, "", "")
            name = (contact.name or "").strip()
            email = checked_email(contact.email)
            if not name:
                raise LifecycleError("Enter the person's name.")
            if not email and send_email:
                raise LifecycleError(
                    f"{name} has no valid email address ('{contact.email}'). Enter a valid email."
                )
            if email and email in emails_in_batch:
                raise LifecycleError(f"A portal user with the email {email} already exists here.")
        except LifecycleError as error:
            refused.append((row, error))
            continue
        if email:
            emails_in_batch.add(email)
        ready.append((row, contact, role, name, email))
    allowed = _not_taken(portal_account, ready, emails_in_batch, refused)
    made = Plan(
        rows=rows,
        by=by,
        send_email=send_email,
        ip=ip,
        roles={pk: _role_key(role) for pk, role in roles.items()},
        allowed=allowed,
        refused=refused,
    )
    made.unsure = not made.emails.isdisjoint(in_flight)
    if allowed and not made.unsure and copy_ahead_possible(User):
        made.writes = _Writes.prepare(portal_account, made)
    return made


def _role_key(role):
    return (role.portal_account_id, role.name, role.user_type, role.active)


def _not_taken(portal_account, ready, emails, refused):
    """The entries whose contact has no user yet and whose email no user of the account has;
    the others are added to `refused`. The same rules as invite, a query each for the batch."""
    if not ready:
        return []
    taken = set(
        User.objects.filter(contact__in=any_of(contact.pk for _, contact, *_ in ready))
        .order_by()
        .values_list("contact_id", flat=True)
    )
    taken_emails = set()
    if emails:
        taken_emails = set(
            User.objects.filter(portal_account=portal_account, email__in=any_of(emails))
            .exclude(email="")  # the condition of the unique index that answers it
            .order_by()
            .values_list("email", flat=True)
        )
    allowed = []
    for entry in ready:
        row, contact, _role, _name, email = entry
        if contact.pk in taken:
            error = LifecycleError(
                f"User already exists: {contact.name} already has a portal user."
            )
        elif email in taken_emails:
            error = LifecycleError(f"A portal user with the email {email} already exists here.")
        else:
            allowed.append(entry)
            continue
        refused.append((row, error))
    return allowed


def _invite_locked(portal_account, rows, by, send_email, ip, ahead):
    # Locked first: the roles' user types are read under it (see lifecycle._role_now).
    locked = PortalAccount.objects.select_for_update().get(pk=portal_account.pk)
    roles_now = Role.objects.in_bulk({role.pk for _, role in rows if role is not None})
    made = ahead
    if made is None or not made.holds(rows, by, send_email, ip, roles_now):
        made = plan(portal_account, rows, by=by, send_email=send_email, ip=ip, roles=roles_now)
    over = _past_licenses(locked, made.allowed)
    if over:
        refused_rows = {id(entry[0]) for entry, _error in over}
        made.allowed = [entry for entry in made.allowed if id(entry[0]) not in refused_rows]
        made.refused += [(entry[0], error) for entry, error in over]
        made.writes = None  # its rows included the refused ones
    if not made.allowed:
        return [], made.refused
    writes = made.writes or _Writes.prepare(portal_account, made)
    writes.write()
    created = [
        (entry[0], user_id) for entry, user_id in zip(made.allowed, writes.user_ids, strict=True)
    ]
    return created, made.refused


def _past_licenses(locked, allowed):
    """The entries past their user type's licenses, in the order of the rows, with the error
    of each: as licenses.claim_seat, the seats counted once per user type for the batch."""
    wanted = Counter(role.user_type for _row, _contact, role, *_ in allowed)
    free, messages = {}, {}
    for user_type in wanted:
        limit, used = locked.licenses_for(user_type), licenses.seats_used(locked, user_type)
        free[user_type] = max(limit - used, 0)
        label, in_use = UserType(user_type).label, max(used, limit)
        messages[user_type] = f"No {label} licenses left: {in_use} of {limit} in use."
    if all(wanted[user_type] <= free[user_type] for user_type in wanted):
        return []
    over = []
    for entry in allowed:
        user_type = entry[2].user_type
        if free[user_type]:
            free[user_type] -= 1
        else:
            over.append((entry, NoLicensesLeft(messages[user_type])))
    return over


class _Writes:
    """The users, audit events and outbox rows of a plan's allowed rows. On PostgreSQL they are
    prepared COPYs, built ahead (`prepare`) and sent under the lock (`write`); elsewhere
    (SQLite) `write` inserts them then, the ids coming back from the users' insert."""

    def __init__(self, portal_account, made):
        self.account = portal_account
        self.made = made
        self.now = timezone.now()
        self.user_ids = None
        self.events = None  # audit.record_many's events, once the user ids are known
        self.copies = None  # users, audit events, outbox rows (None without emails)
        self.email_ids = []

    @classmethod
    def prepare(cls, portal_account, made):
        writes = cls(portal_account, made)
        if copy_ahead_possible(User):
            users = prepare_copy(User, USER_FIELDS, writes._user_rows(), returning_ids=True)
            writes.user_ids = users.ids
            writes.events = writes._events()
            by, ip = made.by, made.ip
            audit_rows = audit.bulk_rows(writes.events, by=by, portal_account=portal_account, ip=ip)
            events = prepare_copy(AuditEvent, audit.BULK_FIELDS, audit_rows)
            emails = None
            if made.send_email:
                emails = prepare_copy(
                    OutboxEmail, OUTBOX_FIELDS, writes._outbox_rows(), returning_ids=True
                )
                writes.email_ids = emails.ids
            writes.copies = (users, events, emails)
        return writes

    def write(self):
        made, account = self.made, self.account
        if self.copies is None:
            self.user_ids = insert(User, USER_FIELDS, self._user_rows(), returning_ids=True)
            self.events = self._events()
            audit.record_many(self.events, by=made.by, portal_account=account, ip=made.ip)
            if made.send_email:
                self.email_ids = insert(
                    OutboxEmail, OUTBOX_FIELDS, self._outbox_rows(), returning_ids=True
                )
        else:
            for copy in self.copies:
                if copy is not None:
                    write_copy(copy)
            audit.announce_many(self.events, portal_account=account)
        if made.send_email:
            # New users have no pending email, so there is nothing for queue_email's cancel to do.
            invitation = str(EmailKind.INVITATION)
            outbox.hand_over_on_commit(self.email_ids, {invitation: len(self.email_ids)})

    def _user_rows(self):
        password = make_password(None)  # unusable, as set_unusable_password; one draw per batch
        account_id = self.account.pk
        kind, state = str(UserKind.PORTAL), str(UserState.UNCONFIRMED)
        last_invited_at = self.now if self.made.send_email else None
        return [
            (kind, account_id, str(role.user_type), contact.pk, role.pk, name, email, state)
            + (self.now, last_invited_at, password, getattr(contact, "crm_account_name", None))
            for _row, contact, role, name, email in self.made.allowed
        ]

    def _events(self):
        """(action, subject user id, subject label, before, after, detail) of each new user."""
        # What audit.user_snapshot gives for each new user: the same for every user of a role.
        snapshots = {}
        state = str(UserState.UNCONFIRMED)
        for _row, _contact, role, _name, _email in self.made.allowed:
            if role.pk not in snapshots:
                snapshots[role.pk] = audit.user_snapshot(User(state=state, role=role))
        detail = "" if self.made.send_email else "no invitation email"
        before = {}  # one object for every row: the bulk insert turns it into JSON once
        return [
            # The subject label is str(user): "name <email>", or the name alone without an email.
            ("invite", user_id, f"{name} <{email}>" if email else name, before, snapshots[role.pk])
            + (detail,)
            for user_id, (_row, _contact, role, name, email) in zip(
                self.user_ids, self.made.allowed, strict=True
            )
        ]

    def _outbox_rows(self):
        context = {"invited_by": self.made.by.name if self.made.by else ""}
        invitation = str(EmailKind.INVITATION)
        return [
            (self.account.pk, user_id, email, invitation, context, self.now)
            for user_id, (*_, email) in zip(self.user_ids, self.made.allowed, strict=True)
        ]
