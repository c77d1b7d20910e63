"""How many emails others may have Portal Admin send one address in an hour: an invitation, a
reset, a reinvitation, a login email or a sign-in code asked for by a console admin or an API
token, the email that enabling a user sends, and the invitation the CRM sync sends again when it
changes an unconfirmed user's address. Without it a leaked token, or a CRM workflow stuck in a
loop, sends an email per call to the same person, who reads it as spam and whose mail server
then learns to refuse ours.

The count is per portal account and address (so deleting a user and inviting the contact again
does not start it afresh, and one account's admins or tokens cannot use up what another account
may send the same person), in the cache (helpers.attempt_counter). It is checked when the
email is asked for and counted when the change commits, so a change that fails uses none of it;
two requests at the same moment may both pass the last one. What users ask for themselves on
the portal is not counted here: portal.throttle limits it by address and by IP, and a stranger
typing someone's address there must not use up what their admin may send. Reminders are not
counted. The CSV import's invitations are not counted in bulk; a row the import does alone (its
batch failed as a whole) goes through `accounts.lifecycle.invite` and is.

The CRM's own emails about an address change (the notice to the current address and the
confirmation link to the new one, accounts.email_changes) count on both addresses: a sync
flipping a contact's address back and forth must not mail either for ever."""

from django.conf import settings
from django.db import transaction

from accounts.errors import TooManyEmails
from helpers import attempt_counter

WINDOW_SECONDS = 3600


def take(user, *, by):
    """One email to `user` asked for by `by` (None: the API or the system, as the audit's
    actor); TooManyEmails, counting nothing, once the hour's allowance is used up."""
    if by is not None and by.pk == user.pk:
        return
    take_for(user.portal_account, user.email, name=user.name)


def take_for(portal_account, address, *, name):
    """`take` for an address that has no user yet (an invitation)."""
    if not allows(portal_account, address):
        limit = settings.EMAILS_ASKED_FOR_PER_ADDRESS_PER_HOUR
        raise TooManyEmails(
            f"{name or address} has already been sent {limit} emails that admins or the API "
            "asked for within the hour. Try again later, when the hour is over (no more are "
            "sent before, so that they do not read as spam)."
        )
    count_on_commit(portal_account, address)


def allows(portal_account, address):
    return not attempt_counter.over_limit(
        [_key(portal_account, address)], settings.EMAILS_ASKED_FOR_PER_ADDRESS_PER_HOUR
    )


def count_on_commit(portal_account, address):
    limit = settings.EMAILS_ASKED_FOR_PER_ADDRESS_PER_HOUR
    key = _key(portal_account, address)
    transaction.on_commit(lambda: attempt_counter.count([key], limit, WINDOW_SECONDS))


def _key(portal_account, address):
    return f"emails-asked-for:{portal_account.pk}:{attempt_counter.email_digest(address)}"
