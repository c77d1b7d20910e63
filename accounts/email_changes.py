"""A new sign-in email from the CRM for a user with a password (an activated portal user, a
portal account's admin).

A portal user's email follows their CRM contact. It is also their sign-in identity (and an
account admin's console identity), so a CRM editor or a contact-sync token that changed it,
followed by "forgot password" at the new address, would hand the login to whoever holds that
mailbox. So the new address does not replace the old one at once: it waits on the user
(`pending_email`), the old address is told, and the new one gets a link to prove it is theirs.
Until that link is used, sign-in, password resets and every email go to the old address. An
invited user who never activated has no password to take: their email follows at once, with
their invitation."""

import hashlib

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import audit, email_allowance, lifecycle, tokens
from accounts.errors import LifecycleError
from accounts.models import EmailKind, OutboxEmail, TokenPurpose, User
from mail import outbox

_CHANGE_MAILS = (EmailKind.EMAIL_CHANGE_CONFIRM, EmailKind.EMAIL_CHANGE_NOTICE)


def holds_changes(user):
    """Whether a new email from the CRM must wait for confirmation: for anyone who has a
    password, which "forgot password" at the new address would hand over (a CRM editor, or a
    contact-sync token, would otherwise own any portal login by pointing its contact at their
    own mailbox). An invited user who never activated has none: their invitation follows the
    CRM's address at once."""
    return user.is_account_admin or user.activated_at is not None


def target_of(email):
    """What a confirmation link carries: which address it confirms (a digest, since a link's
    target is short and the address is no business of the token table)."""
    return "email:" + hashlib.sha256(email.lower().encode()).hexdigest()[:40]


def settle(user, old_pending):
    """After saving a user whose pending email changed (in the same transaction): the links and
    emails for the earlier pending address die; a new pending address gets its confirmation and
    the current address a notice. Returns what it did for the audit event, or None."""
    if user.pending_email == old_pending:
        return None
    OutboxEmail.objects.filter(
        user=user, status=OutboxEmail.Status.PENDING, kind__in=_CHANGE_MAILS
    ).update(status=OutboxEmail.Status.CANCELLED, last_error="The pending email changed.")
    tokens.revoke(user, [TokenPurpose.EMAIL_CHANGE])
    if not user.pending_email:
        return {"held_email": None, "withdrawn": old_pending}
    new, account = user.pending_email, user.portal_account
    if not (email_allowance.allows(account, user.email) and email_allowance.allows(account, new)):
        # A CRM flipping the address: the change waits as asked, but mails neither address
        # again within the hour (the next change after it does).
        return {"held_email": new, "withdrawn": old_pending or None, "mail_held": True}
    outbox.queue_email(user, EmailKind.EMAIL_CHANGE_NOTICE, new_email=new)
    outbox.queue_email(user, EmailKind.EMAIL_CHANGE_CONFIRM, to=new, target=target_of(new))
    email_allowance.count_on_commit(account, user.email)
    email_allowance.count_on_commit(account, new)
    return {"held_email": new, "withdrawn": old_pending or None}


def note(held):
    if held is None:
        return ""
    if held["held_email"] is None:
        return f" The sign-in email change to {held['withdrawn']} was withdrawn."
    if held.get("mail_held"):
        return (
            f" The sign-in email stays until {held['held_email']} confirms it; no link was sent: "
            "the addresses had as many emails as others may ask for within the hour."
        )
    return (
        f" The sign-in email stays until {held['held_email']} confirms it: a confirmation link "
        "went to the new address and a notice to the current one."
    )


@transaction.atomic
def confirm(secret, portal_account, *, ip=None):
    """Use a confirmation link: the pending address becomes the user's sign-in email. Whatever
    was on its way to the old address, and every live link, dies with the change. Raises
    InvalidToken for a dead link, LifecycleError when the change can no longer be made."""
    used = tokens.redeem(secret, TokenPurpose.EMAIL_CHANGE, portal_account)
    # FOR NO KEY UPDATE, as accounts.lifecycle._locked takes (why there).
    user = User.objects.select_for_update(no_key=True).get(pk=used.user_id)
    if not user.pending_email or target_of(user.pending_email) != used.target:
        raise LifecycleError("This link is for an email change that was replaced or withdrawn.")
    old, new = user.email, user.pending_email
    taken = LifecycleError(f"{new} is already the email of another user of this portal.")
    if User.objects.filter(portal_account=portal_account, email=new).exclude(pk=user.pk).exists():
        raise taken
    user.email, user.pending_email = new, ""
    try:
        with transaction.atomic():
            user.save(update_fields=["email", "pending_email"])
    except IntegrityError:  # taken between the check and the save
        raise taken from None
    stopped = lifecycle.stop_mail_and_links(user, "The user's email changed.")
    audit.record(
        "confirm_email_change",
        by=user,
        subject=user,
        before={"email": old},
        after={"email": new, **stopped},
        ip=ip,
        detail=f"{new} confirmed as the new sign-in email at {timezone.now():%Y-%m-%d %H:%M}.",
    )
    return user


@transaction.atomic
def resend_confirmation(user, *, by, ip=None):
    """Send the link that confirms the waiting address again (the first one expired, or went
    astray); the earlier links die when the new one is minted. LifecycleError when no change
    waits, TooManyEmails past the hour's allowance."""
    locked = User.objects.select_for_update(no_key=True).get(pk=user.pk)
    new = locked.pending_email
    if not new:
        raise LifecycleError(f"No change of {locked.name}'s sign-in email waits for confirmation.")
    email_allowance.take_for(locked.portal_account, new, name=locked.name)
    outbox.queue_email(locked, EmailKind.EMAIL_CHANGE_CONFIRM, to=new, target=target_of(new))
    audit.record(
        "resend_email_confirmation",
        by=by,
        subject=locked,
        ip=ip,
        detail=f"The link that confirms {new} as the new sign-in email was sent again.",
    )
    return locked
