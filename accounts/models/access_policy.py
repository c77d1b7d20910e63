"""What a portal account's access does on its own: how long the links its emails and its console
hand out stay valid, invitation reminders, and disabling inactive users. One row per account,
made on first save; an account without one has the defaults (the server's link lifetimes, every
policy off)."""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from accounts.models.portal_account import UserType
from accounts.models.tokens import TokenPurpose

# purpose -> (field, unit, lowest, highest). A magic link a CRM workflow puts into its own email
# may wait days in an inbox; an invitation longer than a month is a standing credential.
LINK_LIFETIMES = {
    TokenPurpose.ACTIVATION: ("invitation_days", "days", 1, 30),
    TokenPurpose.LOGIN_EMAIL: ("login_email_minutes", "minutes", 5, 7 * 24 * 60),
    TokenPurpose.MAGIC_LINK: ("magic_link_minutes", "minutes", 5, 7 * 24 * 60),
    TokenPurpose.PASSWORD_RESET: ("password_reset_hours", "hours", 1, 72),
}
REMINDER_AFTER_DAYS = (1, 30)
REMINDER_MAX = (1, 5)
INACTIVE_DAYS = (14, 1095)
WARNING_DAYS = (1, 60)
# The user types the inactivity policy may disable: employees are the portal owner's own staff.
INACTIVITY_TYPES = (UserType.PARTNER, UserType.CUSTOMER)


def describe(delta):
    """'7 days', '1 hour', '90 minutes': a lifetime as the emails and the console word it."""
    minutes = int(delta.total_seconds() // 60)
    if minutes % (24 * 60) == 0:
        days = minutes // (24 * 60)
        return f"{days} day{'s' if days != 1 else ''}"
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minutes"


def _bounded(errors, field, value, low, high, unit):
    if value is not None and not low <= value <= high:
        errors[field] = f"Enter between {low} and {high} {unit}."


class AccessPolicy(models.Model):
    portal_account = models.OneToOneField(
        "accounts.PortalAccount", on_delete=models.CASCADE, related_name="access_policy"
    )
    # Link lifetimes; empty: the server's default (settings.TOKEN_LIFETIMES).
    invitation_days = models.PositiveSmallIntegerField(null=True, blank=True)
    login_email_minutes = models.PositiveIntegerField(null=True, blank=True)
    magic_link_minutes = models.PositiveIntegerField(null=True, blank=True)
    password_reset_hours = models.PositiveSmallIntegerField(null=True, blank=True)

    reminders_on = models.BooleanField(default=False)
    reminder_after_days = models.PositiveSmallIntegerField(default=3)
    reminder_max = models.PositiveSmallIntegerField(default=2)
    # The reminder sweep's watermark (accounts.reminders): the invitations whose reminder fell due
    # up to this time have had it. Set when reminders are turned on, so turning them on does not
    # remind every old invitation at once.
    reminders_checked_until = models.DateTimeField(null=True, blank=True)

    # Inactivity: days without a sign-in after which a user of the type is disabled; empty: off.
    partner_inactive_days = models.PositiveSmallIntegerField(null=True, blank=True)
    customer_inactive_days = models.PositiveSmallIntegerField(null=True, blank=True)
    inactivity_warning_days = models.PositiveSmallIntegerField(default=14)

    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "access policies"

    def __str__(self):
        return f"Access policy of {self.portal_account_id}"

    def lifetime(self, purpose):
        """How long a new link of `purpose` works for this account."""
        if purpose not in LINK_LIFETIMES:
            return settings.TOKEN_LIFETIMES[purpose]
        field, unit, _low, _high = LINK_LIFETIMES[purpose]
        value = getattr(self, field)
        if value is None:
            return settings.TOKEN_LIFETIMES[purpose]
        return timedelta(**{unit: value})

    def inactive_days(self, user_type):
        if user_type not in INACTIVITY_TYPES:
            return None
        return getattr(self, f"{UserType(user_type).value}_inactive_days")

    @property
    def inactivity_on(self):
        return any(self.inactive_days(user_type) for user_type in INACTIVITY_TYPES)

    def clean(self):
        errors = {}
        for field, unit, low, high in LINK_LIFETIMES.values():
            _bounded(errors, field, getattr(self, field), low, high, unit)
        for field, (low, high), unit in (
            ("reminder_after_days", REMINDER_AFTER_DAYS, "days"),
            ("reminder_max", REMINDER_MAX, "reminders"),
            ("inactivity_warning_days", WARNING_DAYS, "days"),
        ):
            _bounded(errors, field, getattr(self, field), low, high, unit)
        for user_type in INACTIVITY_TYPES:
            field = f"{user_type.value}_inactive_days"
            days = getattr(self, field)
            _bounded(errors, field, days, *INACTIVE_DAYS, "days")
            warning = self.inactivity_warning_days
            if field not in errors and days is not None and warning is not None and warning >= days:
                errors[field] = (
                    f"The warning goes out {warning} days before: make the {user_type.label} "
                    f"inactivity longer than {warning} days, or the warning shorter."
                )
        if errors:
            raise ValidationError(errors)
