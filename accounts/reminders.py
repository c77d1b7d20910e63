"""Invitation reminders: an account's policy (AccessPolicy.reminders_on, off by default) emails
an unconfirmed user reminder n at invited_at + n × reminder_after_days, for n up to
reminder_max.

Cheap however many users an account has: each run reads, per reminder number, the invitations
whose reminder fell due since the last run (the policy's watermark, reminders_checked_until), a
range of the unconfirmed users' (portal_account, invited_at, id) index; users who had all their
reminders, or long ago, are never read again. Idempotent: the watermark moves only after a run
went through, and each user's reminder is checked again under their row lock
(lifecycle.remind), so a second run, or one that overlaps, sends nothing twice."""

from datetime import timedelta

from django.utils import timezone

from accounts import audit, lifecycle
from accounts.errors import LifecycleError
from accounts.models import AccessPolicy, User, UserKind, UserState
from helpers.keyset import batches

ACTOR = "Invitation reminder policy"
BATCH_SIZE = 500


def run(now=None):
    """Send every reminder due; returns how many were sent."""
    now = now or timezone.now()
    sent = 0
    for policy in AccessPolicy.objects.filter(reminders_on=True).order_by("pk"):
        sent += remind_account(policy, now)
    return sent


def _due(policy, number, since, until):
    step = policy.reminder_after_days * timedelta(days=1)
    return User.objects.filter(
        kind=UserKind.PORTAL,
        portal_account_id=policy.portal_account_id,
        state=UserState.UNCONFIRMED,
        invited_at__gt=since - number * step,
        invited_at__lte=until - number * step,
    )


def remind_account(policy, now):
    since = policy.reminders_checked_until or now
    if since >= now:
        return 0
    step = policy.reminder_after_days * timedelta(days=1)
    sent = 0
    with audit.acting_as(ACTOR):
        for number in range(1, policy.reminder_max + 1):
            due = _due(policy, number, since, now)
            for batch in batches(due, ("invited_at", "id"), BATCH_SIZE):
                for invited_at, user_id in batch:
                    # One transaction per user, with its audit event and email.
                    try:
                        done = lifecycle.remind(
                            User(pk=user_id, kind=UserKind.PORTAL),
                            number=number,
                            due_at=invited_at + number * step,
                            quiet_since=now - step,
                        )
                    except LifecycleError:  # deleted meanwhile
                        continue
                    sent += done
    # Compare-and-set: an overlapping run that got further keeps its watermark.
    AccessPolicy.objects.filter(
        pk=policy.pk, reminders_checked_until=policy.reminders_checked_until
    ).update(reminders_checked_until=now)
    return sent


def next_due(user, policy):
    """When the user's next reminder is due under the policy, or None (off, all sent, or not an
    unconfirmed user with an invitation sent). For the Unconfirmed tab; the run decides."""
    if (
        policy is None
        or not policy.reminders_on
        or user.state != UserState.UNCONFIRMED
        or user.last_invited_at is None
        or user.invited_at is None
    ):
        return None
    step = policy.reminder_after_days * timedelta(days=1)
    after = max(
        moment
        for moment in (policy.reminders_checked_until, user.reminded_at, user.invited_at)
        if moment is not None
    )
    for number in range(1, policy.reminder_max + 1):
        due = user.invited_at + number * step
        if due > after:
            return due
    return None


def annotate_next_due(users, policies):
    """Sets `next_reminder_at` on each of the users (one page of the Unconfirmed tab), from
    their account's policy (`policies`: the account's, scoped): one query for the page."""
    policy = policies.first()
    for user in users:
        user.next_reminder_at = next_due(user, policy)
