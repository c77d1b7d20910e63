"""Changes to the CRM mirror that reach a portal user: delete and restore a contact, move an
orphaned user to another contact, merge two contacts. Each is one transaction that locks the rows
it reads, checks the rules (LifecycleError with a message fit to show), and writes its audit
event. The console calls these one at a time; contacts.sync applies the same rules to batches
(merge_locked, repoint_user's steps), writing its own audit events.

A partner or customer user stands on one contact: their name and email follow it, so they change
here too (a contact without a valid email leaves the user's email as it is, since it is their
sign-in name). Whatever was on its way to the old address dies with the change
(settle_email_change), and a deleted contact takes its user's pending emails and live links
with it.

Locks: every path locks the contacts first (in primary-key order, one statement), then their
users, like contacts.sync, so that no two of them wait for each other."""

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts import audit, email_allowance, email_changes, lifecycle, signed_in_sessions
from accounts.errors import LifecycleError
from accounts.lifecycle import valid_email
from accounts.models import EmailKind, LoginToken, OutboxEmail, TokenPurpose, User, UserState
from contacts.models import Contact
from mail import outbox

_INVITATIONS = (EmailKind.INVITATION, EmailKind.REINVITATION)


def _locked_contacts(*contacts):
    """The contacts' rows, locked in primary-key order so that two calls never deadlock."""
    pks = sorted({contact.pk for contact in contacts})
    rows = Contact.objects.select_for_update().filter(pk__in=pks).order_by("pk")
    locked = {row.pk: row for row in rows}
    return [locked[contact.pk] for contact in contacts]


def _locked_user_of(contact):
    # FOR NO KEY UPDATE, as accounts.lifecycle._locked takes (why there).
    return User.objects.select_for_update(no_key=True).filter(contact=contact).first()


def _contact_snapshot(contact):
    return {
        "contact_id": contact.contact_id,
        "deleted": contact.deleted_at is not None,
        "merged_into": contact.merged_into.contact_id if contact.merged_into_id else None,
    }


class EmailTaken(LifecycleError):
    """follow_contact's refusal: another user of the account has the contact's email."""


def follow_contact(user, contact, *, others=None):
    """Set the user's name and email from the contact (unsaved). Refuses an email another user
    of the account has (EmailTaken); `others` maps lower-cased emails to such users when the
    caller looked them up in bulk. A user with a password keeps their email: the new one waits
    for confirmation (accounts.email_changes), saved with the user as `pending_email`."""
    email = valid_email(contact.email) or user.email
    if email != user.email:
        if others is not None:
            holder = others.get(email)
        else:
            holder = (
                User.objects.filter(portal_account_id=user.portal_account_id, email=email)
                .exclude(pk=user.pk)
                .first()
            )
        if holder is not None and holder.pk != user.pk:
            raise EmailTaken(_taken_message(email, holder, user))
    user.name = contact.name
    if email_changes.holds_changes(user):
        user.pending_email = "" if email == user.email else email
        return user
    user.email, user.pending_email = email, ""
    return user


def _taken_message(email, holder, user):
    if holder.pending_email and holder.email == email:
        # The CRM has moved the holder away already: the address frees up when they confirm.
        # (A batch also counts a holder's pending address as taken: that one stays theirs.)
        return (
            f"The email {email} is still the sign-in email of the portal user {holder.name}: "
            f"their new email from the CRM, {holder.pending_email}, waits for them to confirm "
            f"it. Send {user.name}'s contact again once it is confirmed ({holder.name}'s "
            "contact page in the console can send the confirmation again)."
        )
    return (
        f"The email {email} is already used by the portal user {holder.name} of this "
        f"account, so {user.name} cannot take it. Change one of the two emails in the "
        "CRM first."
    )


def settle_email_change(user, old_email):
    """After saving a user whose email follow_contact changed (inside the same transaction):
    nothing meant for the old address may reach it or keep working, since that mailbox may be
    somebody else's now. Cancels the user's pending emails and kills their live login tokens.
    An unconfirmed user whose invitation was on its way (a pending invitation email, or a live
    invitation link) gets it again at the new address, with the same words; a user whose contact
    is deleted does not (they could not sign in). Returns what it did, for the caller's audit
    event, or None when the email did not change."""
    if user.email == old_email:
        return None
    invitation = None
    if user.state == UserState.UNCONFIRMED and user.email and not user.contact_deleted:
        pending = (
            OutboxEmail.objects.filter(
                user=user, status=OutboxEmail.Status.PENDING, kind__in=_INVITATIONS
            )
            .order_by("-queued_at", "-pk")
            .first()
        )
        live_link = LoginToken.objects.filter(
            user=user,
            purpose=TokenPurpose.ACTIVATION,
            used_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__gt=timezone.now(),
        ).exists()
        if pending is not None:
            invitation = (pending.kind, pending.context)
        elif live_link:
            invitation = (EmailKind.INVITATION, {})
    stopped = lifecycle.stop_mail_and_links(user, "The user's email changed.")
    done = {"old_email": old_email, **stopped}
    # A portal session may have begun from a link sent to the old address: it ends with it.
    done["portal_sessions_ended"] = signed_in_sessions.end_portal_sessions(user)
    done["invitation_sent_to"] = None
    if invitation is not None and not email_allowance.allows(user.portal_account, user.email):
        # A CRM flipping the address back and forth must not mail the two for ever: the change
        # stands (the CRM decides the address), the invitation waits for a Reinvite.
        done["invitation_held"] = user.email
    elif invitation is not None:
        kind, context = invitation
        user.last_invited_at = timezone.now()
        User.objects.filter(pk=user.pk).update(last_invited_at=user.last_invited_at)
        outbox.queue_email(user, kind, **context)
        email_allowance.count_on_commit(user.portal_account, user.email)
        done["invitation_sent_to"] = user.email
    return done


def email_change_note(done):
    """The audit detail's words for settle_email_change's result."""
    if done is None:
        return ""
    note = (
        f" Email changed from {done['old_email'] or '(none)'}: {done['emails_cancelled']} "
        f"pending email(s) cancelled, {done['links_revoked']} sign-in link(s) revoked"
    )
    if done["invitation_sent_to"]:
        note += f", invitation sent again to {done['invitation_sent_to']}"
    if done.get("invitation_held"):
        note += (
            f", invitation not sent again: {done['invitation_held']} had as many emails as "
            "others may ask for within the hour; use Reinvite later"
        )
    return note + "."


@dataclass(frozen=True)
class Followed:
    """A user who took a contact's name and email (and maybe the contact itself), ready for
    the audit event: `before` and `after` (with "email_change" when the email changed),
    `done` (settle_email_change's result) and `note` (its words for the detail)."""

    before: dict
    after: dict
    done: dict | None
    held: dict | None = None

    @property
    def note(self):
        return email_change_note(self.done) + email_changes.note(self.held)


def settle_follow(user, before, after):
    """After saving a user follow_contact changed (in the same transaction): settle the email
    change (settle_email_change) and describe the change. `before` and `after` are the
    caller's snapshots of the user; `before` has the old "email"."""
    done = settle_email_change(user, before["email"])
    if done is not None:
        after = {**after, "email_change": done}
    held = email_changes.settle(user, before.get("pending_email", ""))
    if held is not None:
        after = {**after, "email_change_held": held}
    return Followed(before, after, done, held)


def _user_snapshot(user):
    return {
        "contact_id": user.contact.contact_id if user.contact_id else None,
        "name": user.name,
        "email": user.email,
        **({"pending_email": user.pending_email} if user.pending_email else {}),
    }


def repoint_user(user, contact):
    """Move the user (locked, after the contacts) to `contact`: they take its name and email
    (follow_contact, which may refuse), the change is saved and settled. Returns Followed, with
    before and after naming the contacts."""
    before = _user_snapshot(user)
    follow_contact(user, contact)
    user.contact = contact
    user.save(update_fields=["contact", "name", "email", "pending_email"])
    return settle_follow(user, before, _user_snapshot(user))


@transaction.atomic
def delete_contact(contact, *, by, ip=None):
    """Soft delete, like the CRM's recycle bin. A partner or customer user of the contact can no
    longer sign in (User.is_active) and is listed under Orphaned users until a fix; the emails
    queued for them are cancelled and their live links killed, so that none of them (a pending
    invitation, say) lets them in. Restoring the contact gives back none of those: an admin
    reinvites, or the user asks for a new link."""
    (contact,) = _locked_contacts(contact)
    if contact.deleted_at is not None:
        raise LifecycleError(f"{contact.name} is deleted already. Restore it from its page.")
    user = _locked_user_of(contact)
    before = _contact_snapshot(contact)
    contact.deleted_at = timezone.now()
    contact.save(update_fields=["deleted_at", "updated_at"])
    after = _contact_snapshot(contact)
    if user is not None:
        after["user"] = lifecycle.stop_mail_and_links(user, "The user's contact was deleted.")
    audit.record(
        "delete_contact",
        by=by,
        subject=user,
        portal_account=contact.portal_account,
        before=before,
        after=after,
        ip=ip,
        detail=str(contact),
    )
    return contact


def refuse_restore(contact):
    """Why the contact cannot be restored, or "" when it can."""
    if contact.deleted_at is None:
        return f"{contact.name} is not deleted: there is nothing to restore."
    if contact.merged_into_id:
        winner = contact.merged_into
        # Bringing the loser back would make two contacts of one person again, and its portal
        # user went to the winner with the merge.
        return (
            f"{contact.name} ({contact.contact_id}) was merged into {winner.name} "
            f"({winner.contact_id}) and cannot be restored while that merge stands. "
            f"Use {winner.name} instead."
        )
    return ""


@transaction.atomic
def restore_contact(contact, *, by, ip=None):
    """Undo a delete: the contact's user can sign in again if their state allows it."""
    (contact,) = _locked_contacts(contact)
    refusal = refuse_restore(contact)
    if refusal:
        raise LifecycleError(refusal)
    user = _locked_user_of(contact)
    before = _contact_snapshot(contact)
    contact.deleted_at = None
    contact.save(update_fields=["deleted_at", "updated_at"])
    audit.record(
        "restore_contact",
        by=by,
        subject=user,
        portal_account=contact.portal_account,
        before=before,
        after=_contact_snapshot(contact),
        ip=ip,
        detail=str(contact),
    )
    return contact


@transaction.atomic
def move_user_to_contact(user, contact, *, by, ip=None):
    """The orphan fix: associate a user whose contact is deleted with another live contact of
    the same CRM account that has no portal user yet. Locks the two contacts before the user,
    like every other path, so the user's contact is read first without a lock and checked
    again once the user is locked."""
    name = user.name
    user = User.objects.select_related("contact").filter(pk=user.pk).first()
    if user is None:
        raise LifecycleError(f"{name} was deleted. Reload the page.")
    old = user.contact
    if old is None:
        raise LifecycleError(f"{user.name} is not linked to a CRM contact.")
    old, contact = _locked_contacts(old, contact)
    user = User.objects.select_for_update(of=("self",), no_key=True).filter(pk=user.pk).first()
    if user is None:
        raise LifecycleError(f"{name} was deleted at the same moment. Reload the page.")
    if user.contact_id != old.pk:
        raise LifecycleError(
            f"{user.name}'s contact changed at the same moment (a CRM sync, say). Reload the "
            "page and try again."
        )
    user.contact = old
    if old.deleted_at is None:
        raise LifecycleError(
            f"{user.name} is not an orphaned user: their contact {old.name} is not deleted."
        )
    if contact.portal_account_id != user.portal_account_id:
        raise LifecycleError(f"{contact.name} is a contact of another portal account.")
    if contact.deleted_at is not None:
        raise LifecycleError(f"{contact.name} is deleted too. Pick a live contact.")
    if contact.crm_account_name != old.crm_account_name:
        raise LifecycleError(
            f"{contact.name} belongs to the CRM account '{contact.crm_account_name}', not "
            f"'{old.crm_account_name}' like {user.name}'s deleted contact. Pick a contact of "
            "the same CRM account."
        )
    holder = _locked_user_of(contact)
    if holder is not None:
        raise LifecycleError(
            f"{contact.name} already has a portal user ({holder}). Pick a contact without one."
        )
    moved = repoint_user(user, contact)
    audit.record(
        "move_user_to_contact",
        by=by,
        subject=user,
        before=moved.before,
        after=moved.after,
        ip=ip,
        detail=f"{old} → {contact}{moved.note}",
    )
    return user


def already_merged(winner, loser):
    """Whether merging `loser` into `winner` was done before: the loser is merged into the
    winner, or into what the winner was merged into since. (A later merge of the winner sends
    the loser on to the new winner too, see _apply_merge, so replaying a batch of chained merges
    finds each one done.)"""
    if not loser.merged_into_id or winner.pk == loser.pk:
        return False
    if loser.merged_into_id == winner.pk:
        return True
    seen, current = set(), winner
    while current.merged_into_id and current.pk not in seen:
        seen.add(current.pk)
        if current.merged_into_id == loser.merged_into_id:
            return True
        current = current.merged_into
    return False


def refuse_merge(winner, loser, winner_user, loser_user):
    """Why `loser` cannot be merged into `winner`, or "" when it can (or already was)."""
    if winner.pk == loser.pk:
        return f"{winner.name} cannot be merged into itself. Pick two different contacts."
    if winner.portal_account_id != loser.portal_account_id:
        return "Both contacts must belong to the same portal account."
    if already_merged(winner, loser):
        return ""
    if loser.merged_into_id:
        other = loser.merged_into
        return (
            f"{loser.name} ({loser.contact_id}) was merged into {other.name} "
            f"({other.contact_id}) already. Merge {other.name} instead."
        )
    if winner.deleted_at is not None:
        return (
            f"{winner.name} ({winner.contact_id}) is deleted: a merge keeps the winner, so "
            "restore it first or pick a live winner."
        )
    if winner_user is not None and loser_user is not None:
        return (
            f"Both contacts have portal users ({winner_user} and {loser_user}): delete one of "
            "them, or associate it with another contact, then merge again."
        )
    return ""


@transaction.atomic
def merge_contacts(winner, loser, *, by, ip=None):
    """Merge `loser` into `winner`, as the CRM did: the loser is deleted and remembers the winner,
    and the winner keeps its portal user or takes the loser's. Merging again changes nothing."""
    winner, loser = _locked_contacts(winner, loser)
    winner_user = _locked_user_of(winner)
    loser_user = _locked_user_of(loser) if loser.pk != winner.pk else None
    loser_before = _contact_snapshot(loser)
    merged, moved = merge_locked(winner, loser, winner_user, loser_user)
    if not merged:
        return winner
    audit.record(
        "merge_contacts",
        by=by,
        subject=loser_user or winner_user,
        portal_account=winner.portal_account,
        before={"loser": loser_before, "user": moved.before if moved else None},
        after={"loser": _contact_snapshot(loser), "user": moved.after if moved else None},
        ip=ip,
        detail=f"{loser} merged into {winner}{moved.note if moved else ''}",
    )
    return winner


def merge_locked(winner, loser, winner_user, loser_user):
    """The merge itself, once the caller locked both contacts and then their users (None for a
    contact without one): checks the rules (LifecycleError; EmailTaken when the loser's user
    cannot take the winner's email), moves the loser's user to the winner and marks the loser
    merged. Returns (merged, moved): merged False when the merge was done before (nothing
    changed), moved the loser's user's Followed or None."""
    refusal = refuse_merge(winner, loser, winner_user, loser_user)
    if refusal:
        raise LifecycleError(refusal)
    if already_merged(winner, loser):
        return False, None
    moved = None
    if loser_user is not None:
        loser_user.contact = loser  # the locked row, for the snapshot
        moved = repoint_user(loser_user, winner)
    _apply_merge(winner, loser)
    return True, moved


def _apply_merge(winner, loser):
    """Mark the loser merged (and deleted) and send what was merged into it on to the winner,
    so merged_into always names a contact that was never merged away itself."""
    loser.deleted_at = loser.deleted_at or timezone.now()
    loser.merged_into = winner
    loser.save(update_fields=["deleted_at", "merged_into", "updated_at"])
    Contact.objects.filter(merged_into=loser).update(merged_into=winner, updated_at=timezone.now())
