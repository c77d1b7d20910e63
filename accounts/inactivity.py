"""Inactivity: an account's policy (AccessPolicy.partner_inactive_days and
customer_inactive_days, off by default) disables partner and customer users who have not signed
in for N days, after a warning email M days before (inactivity_warning_days). Employees and the
account admin are never disabled by it, nor users whose CRM contact is deleted (they cannot sign
in at all: the Orphaned users page is their place).

A user is disabled only when both hold: inactive for N days, and warned at least M days ago
(after they were last active): a policy made stricter warns first, never disables by surprise.
Active means a sign-in, or getting access (activation, or being enabled again: a user the
policy disabled and an admin enabled starts a new N days). The audit event's actor is the
policy.

Cheap: per account and type, a range of the user_inactive_by_type index up to the warning line
(enabled users of the type, longest inactive first); users who sign in or are disabled leave
it. Idempotent: every user is checked again under their row lock, so a second
run finds nothing to do."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts import audit, lifecycle
from accounts.errors import LifecycleError
from accounts.models import AccessPolicy, AuditEvent, User, UserState
from accounts.models.access_policy import INACTIVITY_TYPES
from helpers.keyset import batches

BATCH_SIZE = 500
DAY = timedelta(days=1)
# When a user was last active, as the index has it (the enable events are added in Python).
ACTIVE = Coalesce("last_login", "activated_at", "created_at")


def actor(user_type, days):
    return f"Inactivity policy ({user_type.label} users, {days} days)"


def last_active(users):
    """{user id: when last active} for users (loaded): their last sign-in, their activation or
    creation when they never signed in, or the last time they were enabled again if later. One
    query for all of them (the enable events of the audit log, by its subject index)."""
    enabled = dict(
        AuditEvent.objects.filter(subject_user__in=[user.pk for user in users], action="enable")
        .order_by()
        .values_list("subject_user")
        .annotate(at=Max("created_at"))
    )
    return {
        user.pk: max(
            moment
            for moment in (
                user.last_login or user.activated_at or user.created_at,
                enabled.get(user.pk),
            )
            if moment is not None
        )
        for user in users
    }


@dataclass(frozen=True)
class Rule:
    """The policy for one account and user type, at `now`."""

    portal_account_id: int
    user_type: str
    days: int
    warning_days: int
    now: datetime

    @property
    def warn_line(self):
        return self.now - (self.days - self.warning_days) * DAY

    @property
    def disable_line(self):
        return self.now - self.days * DAY

    def candidates(self, users=None):
        """The enabled users of the type not active since the warning line, annotated with
        `active` (their last sign-in, else their activation), longest ago first: a range of
        the user_inactive_by_type index, whose expression `active` is. `users`: a scoped
        queryset (the preview)."""
        users = users if users is not None else User.objects.all()
        return (
            users.filter(
                portal_account_id=self.portal_account_id,
                user_type=self.user_type,
                state=UserState.ENABLED,
                is_account_admin=False,  # their console needs them: never disabled by it
            )
            .annotate(active=ACTIVE)
            .filter(active__lte=self.warn_line)
        )

    def warned(self, user, active):
        warned = user.inactivity_warned_at
        return warned if warned is not None and warned > active else None

    def disable_on(self, user, active):
        """The day (UTC) the user will be disabled unless they sign in, or None when the policy
        does not act on them."""
        if user.is_account_admin or user.contact_deleted or active > self.warn_line:
            return None
        earliest = (self.warned(user, active) or self.now) + self.warning_days * DAY
        return max(active + self.days * DAY, earliest).date()


def rules(policy, now):
    for user_type in INACTIVITY_TYPES:
        days = policy.inactive_days(user_type)
        if days:
            warning = policy.inactivity_warning_days
            yield Rule(policy.portal_account_id, user_type, days, warning, now)


def run(now=None):
    """Warn and disable as every account's policy says; returns (warned, disabled)."""
    now = now or timezone.now()
    warned = disabled = 0
    policies = AccessPolicy.objects.filter(
        Q(partner_inactive_days__isnull=False) | Q(customer_inactive_days__isnull=False)
    ).select_related("portal_account")
    for policy in policies.order_by("pk"):
        for rule in rules(policy, now):
            w, d = apply(rule, policy.portal_account)
            warned, disabled = warned + w, disabled + d
    return warned, disabled


def apply(rule, account):
    counts = {"warned": 0, "disabled": 0, None: 0}
    sign_in_url = settings.PORTAL_BASE_URL + account.portal_path() + "login/"
    with audit.acting_as(actor(rule.user_type, rule.days)):
        for batch in batches(rule.candidates(), ("active", "id"), BATCH_SIZE):
            loaded = list(
                User.objects.select_related("contact").filter(pk__in=[row[-1] for row in batch])
            )
            active = last_active(loaded)
            for user in loaded:
                counts[_act(rule, user, active[user.pk], sign_in_url)] += 1
    return counts["warned"], counts["disabled"]


def _act(rule, user, active, sign_in_url):
    """One user, one transaction: warn them, disable them, or nothing."""
    disable_on = rule.disable_on(user, active)
    if disable_on is None:
        return None
    try:
        if rule.warned(user, active) is None:
            done = lifecycle.warn_inactive(
                user,
                active=active,
                disable_on=disable_on,
                inactive_days=(rule.now - active).days,
                sign_in_url=sign_in_url,
            )
            return "warned" if done else None
        if disable_on <= rule.now.date() and active <= rule.disable_line:
            return "disabled" if _disable(rule, user.pk, active) else None
    except LifecycleError:  # deleted meanwhile
        return None
    return None


def _disable(rule, user_id, active):
    with transaction.atomic():
        user = (
            User.objects.select_for_update(no_key=True, of=("self",))
            .select_related("contact")
            .filter(pk=user_id, state=UserState.ENABLED)
            .first()
        )
        if user is None or user.is_account_admin or user.contact_deleted:
            return False
        if user.last_login is not None and user.last_login > active:
            return False  # signed in meanwhile
        warned = rule.warned(user, active)
        if warned is None or warned > rule.now - rule.warning_days * DAY:
            return False
        lifecycle.disable(
            user,
            by=None,
            detail=f"No sign-in since {active.date().isoformat()} "
            f"({(rule.now - active).days} days; the policy allows {rule.days})",
        )
    return True


def preview(rule, users, cap):
    """The ids of the first `cap` + 1 users the rule acts on, in the index's order (a bounded
    read however many there are): the preview pages through them."""
    return list(
        rule.candidates(users).order_by("active", "id").values_list("id", flat=True)[: cap + 1]
    )
