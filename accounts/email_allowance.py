"""How many emails others may have Portal Admin send one user in an hour: a reset, a
reinvitation, a login email or a sign-in code asked for by a console admin or an API token, and
the email that enabling the user sends. Without it a leaked token, or a CRM workflow stuck in a
loop, sends an email per call to the same person, who reads it as spam and whose mail server
then learns to refuse ours.

The count is per recipient, in the cache (helpers.attempt_counter), checked by the lifecycle
verbs while they hold the user's row lock, so two admins at once cannot both pass the last one.
What the user asks for themselves on the portal is not counted here: portal.throttle limits it
by address and by IP, and a stranger typing someone's address there must not use up what their
admin may send. Emails no one asked for (reminders, the CRM sync's email change) are not
counted either."""

from django.conf import settings

from accounts.errors import TooManyEmails
from helpers import attempt_counter

WINDOW_SECONDS = 3600


def take(user, *, by):
    """Count one email to `user` asked for by `by` (None: the API or the system, as the audit's
    actor is); TooManyEmails, and nothing counted, once the hour's allowance is used up."""
    if by is not None and by.pk == user.pk:
        return
    limit = settings.EMAILS_ASKED_FOR_PER_USER_PER_HOUR
    key = f"emails-asked-for:{user.pk}"
    if attempt_counter.over_limit([key], limit):
        raise TooManyEmails(
            f"{user.name or user.email} has already been sent {limit} emails that admins or the "
            "API asked for within the hour. Try again later, when the hour is over (no more "
            "are sent before, so that they do not read as spam)."
        )
    attempt_counter.count([key], limit, WINDOW_SECONDS)
