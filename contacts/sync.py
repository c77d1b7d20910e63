"""What a CRM connector's sync does to a portal account's mirror, a batch at a time: upsert,
delete, restore and merge contacts. No HTTP here (api/sync_views.py reads the requests).

Every batch is all or nothing: it is checked whole, inside the transaction that applies it and
with the rows it names locked, and one invalid item raises InvalidBatch with every item's errors
and leaves everything as it was. A batch that changes nothing writes nothing, so a connector may
send the same batch again (after a timeout, say) without effect. Upsert works in a few queries a
batch whatever its size (bulk lookups, bulk_create, bulk_update); delete, restore and merge follow
contacts.mirror's rules, and a portal user they touch gets an audit event of its own next to the
batch's one.

Upsert matches an item to a contact by contact_id, else salesforce_id (15-character ids as their
18-character form), else by email to a live contact the console created for a user (source
console, no Salesforce id), which then takes the CRM's ids: it is adopted. A console contact is
adopted by one item of a batch, the first; later items with its email create contacts of their
own. A deleted console contact is never adopted (the item creates a new contact): adopting it
would update a contact the console deleted, silently and without restoring it. A field left out
of an item is left as it is; a null or "" email or CRM account name clears it. Each item needs a
contact_id or a salesforce_id, so that the next sync finds the same contact again.

Locks: the batch's contacts (those its ids name and the console contacts its emails may adopt)
in one statement, in primary-key order, then their portal users; contacts.mirror takes them in
the same order."""

from django.db import IntegrityError, OperationalError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts import audit, lifecycle
from accounts.errors import LifecycleError
from accounts.lifecycle import RETRYABLE_SQLSTATES, valid_email
from accounts.models import User
from contacts import mirror
from contacts.models import Contact, new_contact_id
from contacts.sync_items import (
    MAX_ITEMS,
    Found,
    InvalidBatch,
    ItemErrors,
    Once,
    Refused,
    SyncResult,
    check_size,
    ids_condition,
    merge_item,
    raise_if,
    read_items,
    ref_item,
    upsert_item,
)
from helpers.planner_statistics import LoadStatistics

__all__ = [
    "MAX_ITEMS",
    "InvalidBatch",
    "SyncResult",
    "delete_contacts",
    "merge_contacts",
    "restore_contacts",
    "upsert_contacts",
]

_RACE = (
    "Another request changed these contacts at the same moment, so nothing was applied. "
    "Send the batch again."
)


def _atomic_batch(apply):
    """Run `apply` in one transaction. New contacts have no row to lock beforehand, so two
    requests creating the same one both try to insert it and the later one breaks a unique
    constraint: it runs once more and finds the contact then. (Item errors are all found before
    anything is written, so a second run meets none the first did not.)"""
    for attempt in range(2):
        try:
            with transaction.atomic():
                return apply()
        except (IntegrityError, OperationalError) as error:
            # A deadlock or serialization failure is a concurrent change too: PostgreSQL rolled
            # this transaction back, so running it again is safe (and the same batches sent at
            # once by a CRM's retries met one).
            if isinstance(error, OperationalError) and not _retryable(error):
                raise
            if attempt or transaction.get_connection().in_atomic_block:
                # Inside a caller's transaction a second run would see the same snapshot.
                raise LifecycleError(_RACE) from error


def _retryable(error):
    return getattr(error.__cause__, "sqlstate", None) in RETRYABLE_SQLSTATES


def _batch_event(action, account, result, by, ip):
    audit.record(
        action,
        by=by,
        portal_account=account,
        after=dict(result.counts),
        ip=ip,
        detail=", ".join(f"{count} {name}" for name, count in result.counts.items()),
    )


# --- upsert ---


def upsert_contacts(portal_account, items, *, by=None, ip=None):
    """Create or update the batch's contacts. Returns a SyncResult counting created, updated
    and unchanged; raises InvalidBatch (nothing applied) or LifecycleError (a concurrent change;
    nothing applied)."""
    check_size(items)
    errors = ItemErrors()
    rows = [row for _, row in read_items(items, upsert_item, errors)]
    result = _atomic_batch(lambda: _upsert(portal_account, rows, errors, by, ip))
    created = result.counts["created"]
    if created >= ANALYZE_CHECK_AFTER_CREATED:
        transaction.on_commit(lambda: _analyze_if_far_behind(portal_account, created), robust=True)
    return result


# A connector's first sync of a new account creates thousands of contacts a minute, and until
# the table is analysed PostgreSQL plans the next lookups of them for one row
# (helpers/planner_statistics.py). A small batch never makes a plan go wrong by much.
ANALYZE_CHECK_AFTER_CREATED = 100


def _analyze_if_far_behind(account, created):
    LoadStatistics(Contact, account.pk).added(created)


def _adoptable(contact, emails):
    return (
        contact.source == Contact.Source.CONSOLE
        and contact.salesforce_id is None
        and contact.deleted_at is None
        and contact.email in emails
    )


def _match_upserts(account, rows, errors):
    """[(row, contact or None, adopted)]: the contact each valid row updates (None: a new one),
    adopted when it is a console contact found by email (see the module's docstring)."""
    emails = {row.values["email"] for row in rows if row.values.get("email")}
    condition = ids_condition(rows)
    if emails:
        condition |= Q(
            source=Contact.Source.CONSOLE,
            salesforce_id__isnull=True,
            deleted_at__isnull=True,
            email__in=emails,
        )
    found = Found.locked_where(account, condition)  # one statement: one lock order
    by_ids = []
    for row in rows:
        try:
            by_ids.append((row, found.match(row)))
        except Refused as refused:
            errors.add(row.index, refused.field_name, refused.message)
    # A contact an item names by its ids is that item's, not one to adopt by email.
    named = {contact.pk for _, contact in by_ids if contact is not None}
    by_email = {}
    for contact in found.contacts:  # in primary-key order: the oldest is the one meant
        if contact.pk not in named and _adoptable(contact, emails):
            by_email.setdefault(contact.email, contact)
    once, matched = Once(), []
    for row, contact in by_ids:
        adopted = None if contact else by_email.get(row.values.get("email"))
        try:
            once.check(row.index, row, contact or adopted)
        except Refused as refused:
            errors.add(row.index, refused.field_name, refused.message)
            continue
        if adopted is not None:
            del by_email[adopted.email]  # adopted once a batch: later items create contacts
        matched.append((row, contact or adopted, adopted is not None))
    return matched


def _changes(row, contact, adopted):
    wanted = dict(row.values)
    if row.salesforce_id and not contact.salesforce_id:
        wanted["salesforce_id"] = row.salesforce_id
    if adopted:
        # The console's contact is the CRM's now: it takes the CRM's ids and source.
        wanted["source"] = Contact.Source.CRM
        if row.contact_id:
            wanted["contact_id"] = row.contact_id
    return {name: value for name, value in wanted.items() if getattr(contact, name) != value}


def _upsert(account, rows, errors, by, ip):
    now = timezone.now()
    result = SyncResult({"created": 0, "updated": 0, "unchanged": 0})
    to_create, to_update, changed_fields = [], [], set()
    for row, contact, adopted in _match_upserts(account, rows, errors):
        if contact is None:
            contact = Contact(
                portal_account=account,
                contact_id=row.contact_id or new_contact_id(),
                salesforce_id=row.salesforce_id,
                source=Contact.Source.CRM,
                **row.values,
            )
            to_create.append(contact)
            result.add(row.index, contact, "created")
            continue
        changes = _changes(row, contact, adopted)
        if not changes:
            result.add(row.index, contact, "unchanged")
            continue
        for name, value in changes.items():
            setattr(contact, name, value)
        contact.updated_at = now
        changed_fields.update(changes)
        to_update.append((row, contact, changes))
        result.add(row.index, contact, "updated")

    followers = _users_following(account, to_update, errors)
    raise_if(errors)
    Contact.objects.bulk_create(to_create)
    if to_update:
        Contact.objects.bulk_update(
            [contact for _, contact, _ in to_update], [*sorted(changed_fields), "updated_at"]
        )
    if followers:
        User.objects.bulk_update([user for user, _ in followers], FOLLOWED_FIELDS)
    for user, before in followers:
        followed = mirror.settle_follow(user, before, _followed(user))
        audit.record(
            "user_follows_contact",
            by=by,
            subject=user,
            before=followed.before,
            after=followed.after,
            ip=ip,
            detail=f"CRM sync changed {user.contact}.{followed.note}",
        )
    if to_create or to_update:
        _batch_event("sync_contacts", account, result, by, ip)
    return result


def _users_following(account, to_update, errors):
    """Portal users whose contact's name or email changed, with their new name and email set:
    [(user, before)]. An email another user of the account has (or takes in this batch) is an
    error of the item: swapping two users' emails takes two batches."""
    touched = {c.pk: row for row, c, changes in to_update if {"name", "email"} & set(changes)}
    if not touched:
        return []
    contacts = {contact.pk: contact for _, contact, _ in to_update}
    # FOR NO KEY UPDATE, as accounts.lifecycle._locked takes: FOR UPDATE waited for the
    # outbox sender's token insert while it waited for this batch's cancel (a deadlock, a 500).
    users = list(User.objects.select_for_update(no_key=True).filter(contact__in=touched))
    for user in users:
        user.contact = contacts[user.contact_id]  # as this batch leaves it
    wanted = {valid_email(user.contact.email) for user in users} - {""}
    holders = {
        holder.email: holder
        for holder in User.objects.filter(portal_account=account, email__in=wanted)
    }
    followers = []
    for user in users:
        before = _followed(user)
        try:
            mirror.follow_contact(user, user.contact, others=holders)
        except LifecycleError as error:
            errors.add(touched[user.contact_id].index, "email", str(error))
            continue
        holders[user.email] = user
        if user.pending_email:
            holders[user.pending_email] = user
        if before != _followed(user):
            followers.append((user, before))
    return followers


FOLLOWED_FIELDS = ["name", "email", "pending_email"]


def _followed(user):
    followed = {"name": user.name, "email": user.email}
    if user.pending_email:
        followed["pending_email"] = user.pending_email
    return followed


# --- delete and restore ---


def delete_contacts(portal_account, items, *, by=None, ip=None):
    """Soft-delete the named contacts: their portal users can no longer sign in. Already
    deleted ones are unchanged."""
    return _set_deleted(portal_account, items, by, ip, delete=True)


def restore_contacts(portal_account, items, *, by=None, ip=None):
    """Restore the named contacts; live ones are unchanged. A contact merged away cannot be
    restored (an error of its item), as in contacts.mirror.restore_contact."""
    return _set_deleted(portal_account, items, by, ip, delete=False)


def _set_deleted(account, items, by, ip, *, delete):
    check_size(items)
    errors = ItemErrors()
    refs = read_items(items, lambda index, item: ref_item(item), errors)
    return _atomic_batch(lambda: _apply_set_deleted(account, refs, errors, by, ip, delete))


def _apply_set_deleted(account, refs, errors, by, ip, delete):
    found = Found.locked(account, [ref for _, ref in refs])
    outcome = "deleted" if delete else "restored"
    result = SyncResult({outcome: 0, "unchanged": 0})
    once, changing = Once(), []
    for index, ref in refs:
        try:
            contact = found.get(ref)
            once.check(index, ref, contact)
            if (contact.deleted_at is not None) == delete:
                result.add(index, contact, "unchanged")
                continue
            refusal = "" if delete else mirror.refuse_restore(contact)
            if refusal:
                raise Refused(ref.field_name(), refusal)
        except Refused as refused:
            errors.add(index, refused.field_name, refused.message)
            continue
        changing.append(contact)
        result.add(index, contact, outcome)
    raise_if(errors)
    if not changing:
        return result
    now = timezone.now()
    Contact.objects.filter(pk__in=[c.pk for c in changing]).update(
        deleted_at=now if delete else None, updated_at=now
    )
    users = User.objects.select_for_update(of=("self",), no_key=True).filter(contact__in=changing)
    for user in users.select_related("contact").order_by("pk"):
        after = {"contact_id": user.contact.contact_id, "deleted": delete}
        if delete:
            # As contacts.mirror.delete_contact: nothing on its way to the user lets them in.
            after["user"] = lifecycle.stop_mail_and_links(user, "The user's contact was deleted.")
        audit.record(
            "delete_contact" if delete else "restore_contact",
            by=by,
            subject=user,
            before={"contact_id": user.contact.contact_id, "deleted": not delete},
            after=after,
            ip=ip,
            detail=f"CRM sync: {user.contact}",
        )
    _batch_event(f"sync_{'delete' if delete else 'restore'}_contacts", account, result, by, ip)
    return result


# --- merge ---


def merge_contacts(portal_account, items, *, by=None, ip=None):
    """Merge each item's loser into its winner, in order, with contacts.mirror's rules: the
    winner keeps its portal user or takes the loser's; both having one is an error of the item.
    Items are {"winner": ref, "loser": ref}; a merge done before is unchanged."""
    check_size(items)
    errors = ItemErrors()
    pairs = read_items(items, merge_item, errors)
    return _atomic_batch(lambda: _apply_merges(portal_account, pairs, errors, by, ip))


def _apply_merges(account, pairs, errors, by, ip):
    found = Found.locked(account, [ref for _, refs in pairs for ref in refs])
    users = {
        user.contact_id: user
        for user in User.objects.select_for_update(of=("self",), no_key=True).filter(
            contact__in=found.contacts
        )
    }
    result = SyncResult({"merged": 0, "unchanged": 0})
    for index, (winner_ref, loser_ref) in pairs:
        try:
            winner, loser = found.get(winner_ref, "winner"), found.get(loser_ref, "loser")
            outcome = _merge(winner, loser, users, by, ip)
        except Refused as refused:
            errors.add(index, refused.field_name, refused.message)
            continue
        loser_ids = {"contact_id": loser.contact_id, "salesforce_id": loser.salesforce_id}
        result.add(index, winner, outcome, loser=loser_ids)
    raise_if(errors)
    if result.counts["merged"]:
        _batch_event("sync_merge_contacts", account, result, by, ip)
    return result


def _merge(winner, loser, users, by, ip):
    """One merge of the batch (users: the batch's contacts' users by contact pk, kept current)."""
    winner_user, loser_user = users.get(winner.pk), users.get(loser.pk)
    try:
        merged, moved = mirror.merge_locked(winner, loser, winner_user, loser_user)
    except mirror.EmailTaken as error:
        raise Refused("winner", str(error)) from None
    except LifecycleError as error:
        raise Refused(None, str(error)) from None
    if not merged:
        return "unchanged"
    if moved is not None:
        users[winner.pk] = users.pop(loser.pk)
    if winner_user or loser_user:
        after = {"winner": winner.contact_id}
        if moved is not None and moved.done is not None:
            after["email_change"] = moved.done
        audit.record(
            "merge_contacts",
            by=by,
            subject=winner_user or loser_user,
            before={"loser": loser.contact_id, "user": moved.before if moved else None},
            after=after,
            ip=ip,
            detail=f"CRM sync: {loser} merged into {winner}{moved.note if moved else ''}",
        )
    return "merged"
