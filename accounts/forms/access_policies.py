"""A portal account's access policy: the settings form and saving it with its audit event."""

from django import forms
from django.db import transaction
from django.utils import timezone

from accounts import audit, link_lifetimes
from accounts.models import AccessPolicy, PortalAccount, TokenPurpose
from accounts.models.access_policy import (
    INACTIVE_DAYS,
    INACTIVITY_TYPES,
    LINK_LIFETIMES,
    REMINDER_AFTER_DAYS,
    REMINDER_MAX,
    WARNING_DAYS,
    describe,
)

POLICY_FIELDS = [
    "invitation_days",
    "login_email_minutes",
    "magic_link_minutes",
    "password_reset_hours",
    "reminders_on",
    "reminder_after_days",
    "reminder_max",
    "partner_inactive_days",
    "customer_inactive_days",
    "inactivity_warning_days",
]
LIFETIME_LABELS = {
    TokenPurpose.ACTIVATION: "Invitation link",
    TokenPurpose.LOGIN_EMAIL: "Login email link",
    TokenPurpose.MAGIC_LINK: "Magic link",
    TokenPurpose.PASSWORD_RESET: "Password reset link",
}


def policy_for(account):
    """The account's saved policy, or an unsaved one with the defaults."""
    return AccessPolicy.objects.filter(portal_account=account).first() or AccessPolicy(
        portal_account=account
    )


def snapshot(policy):
    return {field: getattr(policy, field) for field in POLICY_FIELDS}


class AccessPolicyForm(forms.ModelForm):
    class Meta:
        model = AccessPolicy
        fields = POLICY_FIELDS
        labels = {
            "reminders_on": "Remind people who have not accepted their invitation",
            "reminder_after_days": "Days between reminders",
            "reminder_max": "Reminders at most",
            "partner_inactive_days": "Disable Partner users after (days without sign-in)",
            "customer_inactive_days": "Disable Customer users after (days without sign-in)",
            "inactivity_warning_days": "Warning email (days before)",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for purpose, (field, unit, low, high) in LINK_LIFETIMES.items():
            default = AccessPolicy().lifetime(purpose)
            self.fields[field].label = f"{LIFETIME_LABELS[purpose]} ({unit})"
            now = ""
            if getattr(self.instance, field) is not None:
                now = f"Now {describe(self.instance.lifetime(purpose))}. "
            help_text = f"{now}{low} to {high} {unit}. Empty: the default, {describe(default)}."
            self.fields[field].help_text = help_text
            self._bounds(field, low, high)
        self.fields["reminder_after_days"].help_text = (
            "The first reminder goes out this many days after the invitation, then again every "
            "this many days. Each reminder carries a new invitation link."
        )
        self._bounds("reminder_after_days", *REMINDER_AFTER_DAYS)
        self._bounds("reminder_max", *REMINDER_MAX)
        for field in ("partner_inactive_days", "customer_inactive_days"):
            self.fields[
                field
            ].help_text = f"{INACTIVE_DAYS[0]} to {INACTIVE_DAYS[1]} days. Empty: never."
            self._bounds(field, *INACTIVE_DAYS)
        self.fields["inactivity_warning_days"].help_text = (
            "The user is emailed this many days before; nobody is disabled sooner than this "
            "after their warning."
        )
        self._bounds("inactivity_warning_days", *WARNING_DAYS)

    def _bounds(self, field, low, high):
        # The form's own bound checks would answer in Django's words; the model's clean()
        # answers in the product's ("Enter between 5 and 10080 minutes."), so only the
        # database's limits stay here.
        self.fields[field].widget.attrs.update(min=low, max=high)

    def save_audited(self, account, *, by, ip):
        """Saves the policy under the account's row lock with its audit event; {field: new
        value} for what changed (nothing saved or recorded when nothing did)."""
        with transaction.atomic():
            PortalAccount.objects.select_for_update().filter(pk=account.pk).first()
            current = policy_for(account)
            before = snapshot(current)
            for field in POLICY_FIELDS:
                setattr(current, field, self.cleaned_data[field])
            after = snapshot(current)
            changed = [field for field in POLICY_FIELDS if before[field] != after[field]]
            if not changed:
                return {}
            if current.reminders_on and not before["reminders_on"]:
                current.reminders_checked_until = timezone.now()
            current.save()
            audit.record(
                "update_access_policy",
                by=by,
                portal_account=account,
                before={field: before[field] for field in changed},
                after={field: after[field] for field in changed},
                ip=ip,
            )
            transaction.on_commit(lambda: link_lifetimes.forget(account.pk))
        return {field: after[field] for field in changed}


class InactivityPreviewForm(forms.Form):
    """What the inactivity policy would do with these numbers (the saved ones by default), so
    an admin can try a policy before saving it."""

    user_type = forms.ChoiceField(
        label="User type", choices=[(t.value, t.label) for t in INACTIVITY_TYPES]
    )
    days = forms.IntegerField(label="Days without sign-in")
    warning_days = forms.IntegerField(label="Warning (days before)")

    def clean(self):
        cleaned = super().clean()
        errors = {}
        days, warning = cleaned.get("days"), cleaned.get("warning_days")
        if days is not None and not INACTIVE_DAYS[0] <= days <= INACTIVE_DAYS[1]:
            errors["days"] = f"Enter between {INACTIVE_DAYS[0]} and {INACTIVE_DAYS[1]} days."
        if warning is not None and not WARNING_DAYS[0] <= warning <= WARNING_DAYS[1]:
            errors["warning_days"] = f"Enter between {WARNING_DAYS[0]} and {WARNING_DAYS[1]} days."
        if not errors and days is not None and warning is not None and warning >= days:
            errors["warning_days"] = "Make the warning shorter than the days without sign-in."
        for field, message in errors.items():
            self.add_error(field, message)
        return cleaned


def preview_defaults(policy):
    """The preview's starting numbers: the saved policy's, else a common one."""
    for user_type in INACTIVITY_TYPES:
        days = policy.inactive_days(user_type)
        if days:
            return {
                "user_type": user_type.value,
                "days": days,
                "warning_days": policy.inactivity_warning_days,
            }
    return {"user_type": INACTIVITY_TYPES[0].value, "days": 90, "warning_days": 14}
