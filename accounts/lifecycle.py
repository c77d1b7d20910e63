"""The portal-user lifecycle. Every function is one transaction that locks the user, checks the
rules, changes the row, writes its audit event and queues the email that is due.

    (contact, no user) --invite--> unconfirmed --activate--> enabled
    unconfirmed --reinvite--> unconfirmed          enabled/unconfirmed --disable--> disabled
    disabled --enable--> enabled (+ access restored) or unconfirmed (+ invitation, never activated)
    any --delete--> gone        enabled --reset password--> enabled        any --change role--> same
"""

import functools
import re

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone

from accounts import audit, email_allowance, licenses, signed_in_sessions, tokens
from accounts.errors import LifecycleError
from accounts.models import (
    EmailKind,
    PortalAccount,
    Role,
    TokenPurpose,
    User,
    UserKind,
    UserState,
    UserType,
)
from accounts.models.user import access_end_problem
from accounts.portal_sections import SECTIONS
from contacts.models import Contact
from helpers.email_addresses import header_safe
from mail import outbox


def valid_email(value):
    """The address lower-cased if it is a valid email, else ""."""
    value = (value or "").strip().lower()
    try:
        validate_email(value)
    except ValidationError:
        return ""
    return value if header_safe(value) else ""


def email_checker():
    """`valid_email` for a batch of thousands of addresses: the same answers (the same steps as
    Django's `validate_email`), with each domain checked once. The domain check is most of the
    validator's cost, and the addresses of one import share a few domains."""
    domains = {}
    # Django's regex is a lazy object: every attribute access goes through a proxy. The same
    # pattern compiled here (re caches it) is the regex itself.
    lazy = validate_email.user_regex
    user_regex = re.compile(lazy.pattern, lazy.flags)
    allowlist = validate_email.domain_allowlist

    def check(value):
        value = (value or "").strip().lower()
        if not value or "@" not in value or len(value) > 320 or not header_safe(value):
            return ""
        user_part, domain_part = value.rsplit("@", 1)
        if not user_regex.match(user_part):
            return ""
        valid = domains.get(domain_part)
        if valid is None:
            valid = domain_part in allowlist or validate_email.validate_domain_part(domain_part)
            domains[domain_part] = valid
        return value if valid else ""

    return check


def _locked(user):
    """The user read again under a row lock, as they are now; LifecycleError when another
    request deleted them meanwhile (it held the lock first, so this one waited and found no row)."""
    if user.kind != UserKind.PORTAL:
        raise LifecycleError(f"{user} is MSSP staff, not a portal user.")
    # Locked first, read whole afterwards: a locking query that also joins the role, contact and
    # account rechecks only the user's row after waiting, so a role or contact changed by the
    # request it waited for came back as None (and a delete then failed on user.role.name).
    # FOR NO KEY UPDATE, as an UPDATE of the row takes: it still serializes the verbs, but lets
    # the outbox sender insert a token for this user while it holds the email's row, which
    # stop_mail_and_links then waits for; FOR UPDATE made the two wait for each other (a
    # deadlock, and a 500 for the delete or disable PostgreSQL picked as its victim).
    locked = (
        User.objects.select_for_update(no_key=True).filter(pk=user.pk).values_list("pk", flat=True)
    )
    if not list(locked):
        raise LifecycleError(f"{user.name} was deleted meanwhile.")
    return User.objects.select_related("portal_account", "role", "contact").get(pk=user.pk)


# deadlock_detected, serialization_failure
RETRYABLE_SQLSTATES = ("40P01", "40001")


def _concurrent_change(user):
    """The message for a constraint a concurrent request broke under this one."""
    if not User.objects.filter(pk=user.pk).exists():
        return f"{user.name} was deleted meanwhile."
    return f"{user.name} was changed meanwhile: reload and try again."


def _verb(function):
    """One transaction for a verb on an existing user (what @transaction.atomic was), with a
    constraint broken by a concurrent change turned into a LifecycleError naming the person, so
    the console and the API answer 409 with a plain message instead of 500. Outside the
    transaction because PostgreSQL checks foreign keys when it commits."""

    @functools.wraps(function)
    def verb(user, *args, **kwargs):
        try:
            with transaction.atomic():
                return function(user, *args, **kwargs)
        except IntegrityError as error:
            raise LifecycleError(_concurrent_change(user)) from error
        except OperationalError as error:
            # A deadlock or serialization failure is a concurrent change too; PostgreSQL has
            # rolled this transaction back, so trying again is safe.
            if getattr(error.__cause__, "sqlstate", None) not in RETRYABLE_SQLSTATES:
                raise
            raise LifecycleError(_concurrent_change(user)) from error

    return verb


def check_role(portal_account, role):
    if role is None:
        raise LifecycleError("Pick a role.")
    if role.portal_account_id != portal_account.pk:
        raise LifecycleError(f"Role '{role.name}' is not a role of {portal_account}.")
    if not role.active:
        raise LifecycleError(f"Role '{role.name}' is inactive. Pick an active role.")


def _role_now(portal_account, role):
    """The role read again under the account's row lock. A role's user type changes only under
    that lock, and only while nobody has the role (accounts.forms.portal_accounts.RoleForm), so
    the type read here is the one the new or changed user keeps."""
    if role is None:
        return None
    PortalAccount.objects.select_for_update().filter(pk=portal_account.pk).first()
    current = Role.objects.filter(pk=role.pk).first()
    if current is None:
        raise LifecycleError(f"Role '{role.name}' was deleted meanwhile. Pick another role.")
    return current


def role_type_mismatch(role, user_type):
    """The message when a caller names a user type other than the role's, else "". The role
    decides the type; a caller (the API) that also sends one must agree with it."""
    if not user_type or user_type == role.user_type:
        return ""
    named = UserType(user_type).label if user_type in UserType.values else repr(user_type)
    return (
        f"The role '{role.name}' is a {role.get_user_type_display()} role, so the user is a "
        f"{role.get_user_type_display()} user, not {named}. Leave the user type out, or pick "
        f"one of the {named} roles."
    )


def _require_state(user, allowed, doing):
    if user.state not in allowed:
        raise LifecycleError(f"Cannot {doing} {user.name}: the user is {user.get_state_display()}.")


def _require_live_contact(user):
    if user.contact_deleted:
        raise LifecycleError(
            f"{user.name} cannot sign in: their CRM contact was deleted. Restore it first."
        )


def _require_email(user, doing):
    if not user.email:
        raise LifecycleError(
            f"Cannot {doing} {user.name}: the user has no valid email address. "
            "Fix the contact's email in the CRM first."
        )


EMPLOYEE_ROLE_ON_CONTACT = (
    "The role '{role}' is an Employee role, and employees are not CRM contacts. Pick a partner "
    "or customer role for a contact."
)


def resolve_contact(portal_account, role, contact, name, email):
    """The contact a new partner/customer user stands on: the given one, or a new console
    contact made from name + email (a later CRM sync matches it by email)."""
    if not role.needs_contact:
        if contact is not None:
            raise LifecycleError(EMPLOYEE_ROLE_ON_CONTACT.format(role=role.name))
        return None
    if contact is None:
        return Contact.objects.create(
            portal_account=portal_account, name=name, email=email, source=Contact.Source.CONSOLE
        )
    if contact.portal_account_id != portal_account.pk:
        raise LifecycleError("That contact belongs to another portal account.")
    if contact.deleted_at is not None:
        raise LifecycleError(f"{contact.name}'s contact was deleted in the CRM. Restore it first.")
    return contact


def stop_mail_and_links(user, reason):
    """Cancel the user's pending emails, then kill their live login tokens: {what: how many}.
    In this order because the outbox sender locks its row and then mints a token (revoking the
    older ones), so taking the tokens first could leave the two waiting for each other."""
    cancelled = outbox.cancel_pending(user, reason=reason)
    revoked = tokens.revoke(user)
    return {"emails_cancelled": cancelled, "links_revoked": revoked}


@transaction.atomic
def invite(
    portal_account,
    *,
    role,
    by,
    user_type=None,
    contact=None,
    name="",
    email="",
    send_email=True,
    ip=None,
):
    """Give a contact (or, for employees, a name + email) a portal login: an unconfirmed user
    and, with send_email, an invitation. The user type is the role's; `user_type`, if given,
    must be the same (LifecycleError otherwise)."""
    role = _role_now(portal_account, role)
    check_role(portal_account, role)
    mismatch = role_type_mismatch(role, user_type)
    if mismatch:
        raise LifecycleError(mismatch)
    user_type = role.user_type
    if contact is not None:
        if User.objects.filter(contact=contact).exists():
            raise LifecycleError(f"User already exists: {contact.name} already has a portal user.")
        name, email = contact.name, contact.email
    name = (name or "").strip()
    email_ok = valid_email(email)
    if not name:
        raise LifecycleError("Enter the person's name.")
    if not email_ok and (send_email or contact is None):
        who = name or "This contact"
        raise LifecycleError(f"{who} has no valid email address ('{email}'). Enter a valid email.")
    if email_ok and User.objects.filter(portal_account=portal_account, email=email_ok).exists():
        raise LifecycleError(f"A portal user with the email {email_ok} already exists here.")
    if send_email:
        email_allowance.take_for(portal_account, email_ok, name=name)
    licenses.claim_seat(portal_account, user_type)
    if contact is not None:
        # Locked and read again: a CRM sync deleting the contact at this moment either goes
        # first (and the invite is refused) or waits until the user exists (and orphans it).
        contact = Contact.objects.select_for_update().get(pk=contact.pk)
    contact = resolve_contact(portal_account, role, contact, name, email_ok)
    now = timezone.now()
    user = User(
        kind=UserKind.PORTAL,
        portal_account=portal_account,
        user_type=user_type,
        contact=contact,
        role=role,
        name=name,
        email=email_ok,
        state=UserState.UNCONFIRMED,
        invited_at=now,
        last_invited_at=now if send_email else None,
    )
    user.set_unusable_password()
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as error:  # a concurrent invite of the same contact or email won
        raise LifecycleError(f"User already exists: {name} already has a portal user.") from error
    audit.record(
        "invite",
        by=by,
        subject=user,
        ip=ip,
        after=audit.user_snapshot(user),
        detail="" if send_email else "no invitation email",
    )
    if send_email:
        outbox.queue_email(user, EmailKind.INVITATION, invited_by=by.name if by else "")
    return user


@_verb
def activate(user, password, *, ip=None):
    """The invited person sets a password: unconfirmed -> enabled."""
    user = _locked(user)
    _require_state(user, [UserState.UNCONFIRMED], "activate")
    _require_live_contact(user)
    before = audit.user_snapshot(user)
    user.set_password(password)
    user.state = UserState.ENABLED
    user.activated_at = timezone.now()
    user.save()
    tokens.revoke(user, [TokenPurpose.ACTIVATION])
    audit.record(
        "activate", by=user, subject=user, ip=ip, before=before, after=audit.user_snapshot(user)
    )
    return user


@_verb
def set_new_password(user, password, *, ip=None):
    """A password reset link used: the new password, every other reset link and every session
    opened with the old password gone."""
    user = _locked(user)
    _require_state(user, [UserState.ENABLED], "set a new password for")
    _require_live_contact(user)
    user.set_password(password)
    user.save(update_fields=["password"])
    tokens.revoke(user, [TokenPurpose.PASSWORD_RESET])
    ended = signed_in_sessions.end_all(user)
    audit.record("set_new_password", by=user, subject=user, ip=ip, after={"sessions_ended": ended})
    return user


@_verb
def disable(user, *, by, ip=None, detail=""):
    """Stop a user signing in; their seat is freed and every link they hold dies. `detail`: why,
    when a policy disables (by None, the policy named by audit.acting_as)."""
    user = _locked(user)
    _require_state(user, [UserState.ENABLED, UserState.UNCONFIRMED], "disable")
    before = audit.user_snapshot(user)
    user.state = UserState.DISABLED
    user.disabled_at = timezone.now()
    user.disabled_by = by
    user.save(update_fields=["state", "disabled_at", "disabled_by"])
    stop_mail_and_links(user, "The user was disabled.")
    signed_in_sessions.end_all(user)
    audit.record(
        "disable",
        by=by,
        subject=user,
        ip=ip,
        before=before,
        after=audit.user_snapshot(user),
        detail=detail,
    )
    return user


@_verb
def enable(user, *, by, ip=None):
    """Give a disabled user their access back. Someone who never activated is invited again."""
    user = _locked(user)
    _require_state(user, [UserState.DISABLED], "enable")
    if user.contact_deleted:
        raise LifecycleError(
            f"{user.name}'s contact was deleted in the CRM: restore the contact or link the "
            "user to another contact first."
        )
    licenses.claim_seat(user.portal_account, user.user_type)
    if user.email:
        email_allowance.take(user, by=by)
    before = audit.user_snapshot(user)
    user.disabled_at = None
    user.disabled_by = None
    if user.activated_at:
        user.state = UserState.ENABLED
        kind = EmailKind.ACCESS_RESTORED
    else:
        user.state = UserState.UNCONFIRMED
        user.last_invited_at = timezone.now()
        kind = EmailKind.INVITATION
    user.save()
    audit.record(
        "enable", by=by, subject=user, ip=ip, before=before, after=audit.user_snapshot(user)
    )
    if user.email:
        outbox.queue_email(user, kind)
    return user


@_verb
def delete(user, *, by, ip=None):
    """Remove the login for good. The contact stays; audit events keep the user's name."""
    user = _locked(user)
    if user.is_account_admin:
        raise LifecycleError(
            f"{user.name} holds the account admin seat. Make another user the account admin first."
        )
    audit.record(
        "delete",
        by=by,
        subject=user,
        ip=ip,
        before=audit.user_snapshot(user),
        after={"state": "deleted"},
    )
    stop_mail_and_links(user, "The user was deleted.")
    signed_in_sessions.end_all(user)
    user.delete()


@_verb
def reinvite(user, *, by, ip=None):
    """Send a new invitation; every older invitation link dies."""
    user = _locked(user)
    _require_state(user, [UserState.UNCONFIRMED], "reinvite")
    _require_email(user, "reinvite")
    _require_live_contact(user)
    email_allowance.take(user, by=by)
    tokens.revoke(user, [TokenPurpose.ACTIVATION])
    user.last_invited_at = timezone.now()
    user.save(update_fields=["last_invited_at"])
    audit.record(
        "reinvite",
        by=by,
        subject=user,
        ip=ip,
        before=audit.user_snapshot(user),
        after=audit.user_snapshot(user),
    )
    outbox.queue_email(user, EmailKind.REINVITATION)
    return user


@_verb
def reset_password(user, *, by, ip=None):
    """Email the user a link to choose a new password (the current one keeps working until then)."""
    user = _locked(user)
    _require_state(user, [UserState.ENABLED], "reset the password of")
    _require_email(user, "reset the password of")
    _require_live_contact(user)
    email_allowance.take(user, by=by)
    audit.record(
        "reset_password",
        by=by,
        subject=user,
        ip=ip,
        before=audit.user_snapshot(user),
        after=audit.user_snapshot(user),
    )
    outbox.queue_email(user, EmailKind.PASSWORD_RESET)
    return user


@_verb
def change_role(user, role, *, by, ip=None):
    """Give the user another role, and with it the role's user type. A new type takes a seat
    of that type (checked under the account lock, as invite) and frees the old one, in this
    transaction. Partner and customer users stand on a CRM contact and employees never do, so a
    role that would cross that line is refused."""
    user = _locked(user)
    role = _role_now(user.portal_account, role)
    check_role(user.portal_account, role)
    if user.role_id == role.pk:
        raise LifecycleError(f"{user.name} already has the role '{role.name}'.")
    changing_type = role.user_type != user.user_type
    if changing_type and role.needs_contact != UserType(user.user_type).needs_contact:
        have = "are CRM contacts" if user.contact_id else "are not CRM contacts"
        raise LifecycleError(
            f"The role '{role.name}' is a {role.get_user_type_display()} role, and "
            f"{user.get_user_type_display()} users like {user.name} {have}. Pick "
            f"{'a partner or customer' if user.contact_id else 'an employee'} role."
        )
    if changing_type and user.holds_seat:
        licenses.claim_seat(user.portal_account, role.user_type)
    before = audit.user_snapshot(user)
    after_type = {}
    if changing_type:
        before["user_type"], after_type["user_type"] = user.user_type, role.user_type
    user.role = role
    user.user_type = role.user_type
    user.save(update_fields=["role", "user_type"])
    after = {**audit.user_snapshot(user), **after_type}
    audit.record("change_role", by=by, subject=user, ip=ip, before=before, after=after)
    return user


@_verb
def end_sessions(user, *, by, ip=None):
    """Sign the user out of every browser. signed_in_sessions.end_for_user under the user's row
    lock: unlocked, a delete committing meanwhile went unnoticed (the audit event then named a
    user already gone); here the delete is waited for and reported."""
    user = _locked(user)
    return signed_in_sessions.end_for_user(user, by=by, ip=ip)


ADMIN_SEAT_RACE = (
    "Someone else changed the account admin at the same time. Reload the page and try again."
)


@_verb
def make_account_admin(user, *, by, ip=None):
    """Move the account admin seat to this user; the previous holder loses it in the same
    transaction, so an account never has two. When another move lands first, this one is
    refused (ADMIN_SEAT_RACE) and changes nothing."""
    user = _locked(user)
    if user.is_account_admin:
        raise LifecycleError(f"{user.name} is already the account admin.")
    if user.state == UserState.UNCONFIRMED:
        # The seat's holder manages the account's users in the console, which needs a password;
        # an invited user has not chosen one yet.
        raise LifecycleError(
            f"{user.name} has not accepted their invitation yet: only a confirmed user can become "
            "the account admin."
        )
    _require_state(user, [UserState.ENABLED], "make account admin")
    previous = (
        User.objects.select_for_update(no_key=True)
        .filter(portal_account=user.portal_account, is_account_admin=True)
        .first()
    )
    if previous is not None:
        previous.is_account_admin = False
        previous.save(update_fields=["is_account_admin"])
        audit.record(
            "remove_account_admin",
            by=by,
            subject=previous,
            ip=ip,
            before={"is_account_admin": True},
            after={"is_account_admin": False},
        )
    before = audit.user_snapshot(user)
    user.is_account_admin = True
    try:
        with transaction.atomic():
            user.save(update_fields=["is_account_admin"])
    except IntegrityError:
        # Another request gave the seat to someone else after we looked for its holder (the
        # unique constraint allows one admin per account). Raising rolls back everything this
        # call did, so the seat stays where the other request put it.
        raise LifecycleError(ADMIN_SEAT_RACE) from None
    audit.record(
        "make_account_admin",
        by=by,
        subject=user,
        ip=ip,
        before=before,
        after=audit.user_snapshot(user),
    )
    return user


@_verb
def send_login_code(user, *, by, ip=None):
    """Email an enabled user a one-time sign-in code (minted when the email is sent)."""
    user = _locked(user)
    _require_state(user, [UserState.ENABLED], "send a sign-in code to")
    _require_email(user, "send a sign-in code to")
    _require_live_contact(user)
    email_allowance.take(user, by=by)
    audit.record("send_login_code", by=by, subject=user, ip=ip)
    outbox.queue_email(user, EmailKind.LOGIN_CODE)
    return user


@_verb
def send_login_email(user, *, by, target="", ip=None):
    """Email an enabled user a one-click sign-in link (optionally to a portal section)."""
    user = _locked(user)
    _require_state(user, [UserState.ENABLED], "send a login email to")
    _require_email(user, "send a login email to")
    _require_live_contact(user)
    email_allowance.take(user, by=by)
    audit.record("send_login_email", by=by, subject=user, ip=ip, detail=target)
    outbox.queue_email(user, EmailKind.LOGIN_LINK, target=target)
    return user


@_verb
def remind(user, *, number, due_at, quiet_since):
    """The account's reminder policy emails an unconfirmed user reminder `number` (due at
    `due_at`) with a new invitation link. Returns False, changing nothing, when it is not due
    after all: already sent (a second run), the user moved on, or a person sent an invitation
    after `quiet_since` (the reminder would repeat it)."""
    user = _locked(user)
    if user.state != UserState.UNCONFIRMED or not user.email or user.contact_deleted:
        return False
    if user.last_invited_at is None:  # invited without an email: nothing to remind of
        return False
    if user.reminded_at is not None and user.reminded_at >= due_at:
        return False
    if user.last_invited_at > quiet_since and user.last_invited_at != user.reminded_at:
        return False
    now = timezone.now()
    user.reminders_sent = (user.reminders_sent or 0) + 1
    user.reminded_at = user.last_invited_at = now
    user.save(update_fields=["reminders_sent", "reminded_at", "last_invited_at"])
    audit.record(
        "send_invitation_reminder",
        by=None,
        subject=user,
        after={"reminders_sent": user.reminders_sent},
        detail=f"reminder {number}",
    )
    outbox.queue_email(user, EmailKind.INVITATION_REMINDER)
    return True


@_verb
def set_access_end(user, ends_on, *, by, ip=None):
    """Give the user an access end date (None: no end). accounts.expiry disables them at the
    start of that day (UTC). Returns False when the date was already so (nothing recorded)."""
    user = _locked(user)
    problem = access_end_problem(ends_on, timezone.now().date())
    if problem:
        raise LifecycleError(problem)
    if user.access_ends_on == ends_on:
        return False
    before = {"access_ends_on": _day(user.access_ends_on)}
    user.access_ends_on = ends_on
    user.save(update_fields=["access_ends_on"])
    audit.record(
        "change_access_end",
        by=by,
        subject=user,
        ip=ip,
        before=before,
        after={"access_ends_on": _day(ends_on)},
    )
    return True


def _day(value):
    return value.isoformat() if value else None


@_verb
def warn_inactive(user, *, active, disable_on, inactive_days, sign_in_url):
    """The inactivity policy warns an enabled user, last active at `active`, that their access
    ends on `disable_on` unless they sign in. Returns False, changing nothing, when that is no
    longer so: they signed in or were warned since, or moved on."""
    user = _locked(user)
    if user.state != UserState.ENABLED or user.contact_deleted or user.is_account_admin:
        return False
    if user.last_login is not None and user.last_login > active:
        return False
    if user.inactivity_warned_at is not None and user.inactivity_warned_at > active:
        return False
    user.inactivity_warned_at = timezone.now()
    user.save(update_fields=["inactivity_warned_at"])
    audit.record(
        "send_inactivity_warning",
        by=None,
        subject=user,
        detail=f"to be disabled on {disable_on.isoformat()}"
        + ("" if user.email else "; no email address, so no email"),
    )
    if user.email:
        outbox.queue_email(
            user,
            EmailKind.INACTIVITY_WARNING,
            inactive_days=inactive_days,
            disable_on=f"{disable_on:%B} {disable_on.day}, {disable_on.year}",
            sign_in_url=sign_in_url,
        )
    return True


# The portal sections a sign-in link may open.
PORTAL_SECTIONS = tuple(SECTIONS)


@_verb
def issue_magic_link(user, *, by, target="", ip=None):
    """A one-time sign-in link a console person hands to an enabled user themselves (optionally
    opening a portal section). Returns the new LoginToken (its target and expires_at) with
    `.secret` attached, the only time the secret exists in clear; every older magic link of the
    user dies."""
    user = _locked(user)
    _require_state(user, [UserState.ENABLED], "create a magic link for")
    if user.contact_deleted:
        raise LifecycleError(
            f"Cannot create a magic link for {user.name}: their CRM contact was deleted. "
            "Restore it first."
        )
    if target and target not in PORTAL_SECTIONS:
        raise LifecycleError(f"'{target}' is not a portal section. Pick one from the list.")
    token = tokens.issue_token(user, TokenPurpose.MAGIC_LINK, target=target, by=by)
    audit.record("issue_magic_link", by=by, subject=user, ip=ip, detail=target or "home")
    return token
