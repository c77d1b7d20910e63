from django import forms

from accounts.forms.users import RoleChoiceField, active_roles
from accounts.models import CONTACT_USER_TYPES

# A role picked from a stale page may have been deactivated since: say what to do.
ROLE_ERRORS = {
    "required": "Pick a role.",
    "invalid_choice": "That role is inactive or not a role of this portal account. Pick an "
    "active role. A contact's user needs a partner or customer role.",
}


class EnablePortalUserForm(forms.Form):
    """The card of a contact without a portal user: give it one."""

    role = RoleChoiceField(
        queryset=None,
        empty_label="Pick a role",
        label="Role",
        error_messages=ROLE_ERRORS,
    )
    send_invitation = forms.BooleanField(
        label="Send the invitation email now", required=False, initial=True
    )

    def __init__(self, *args, person, account, **kwargs):
        kwargs.setdefault("auto_id", "enable-%s")
        super().__init__(*args, **kwargs)
        # A contact's user is a partner or a customer: employees are not CRM contacts.
        roles = active_roles(person, account).filter(user_type__in=CONTACT_USER_TYPES)
        self.fields["role"].set_roles(roles)


class CardRoleForm(forms.Form):
    role = RoleChoiceField(
        queryset=None, empty_label=None, label="Role", error_messages=ROLE_ERRORS
    )

    def __init__(self, *args, person, account, user=None, **kwargs):
        kwargs.setdefault("auto_id", "card-%s")
        super().__init__(*args, **kwargs)
        self.fields["role"].set_roles(active_roles(person, account, for_user=user))


class BulkEnableForm(forms.Form):
    """The contacts page's bulk bar: the role every new user gets (and with it their type)."""

    role = RoleChoiceField(
        queryset=None,
        empty_label="Pick a role",
        label="Role for the new users",
        error_messages=ROLE_ERRORS,
    )

    def __init__(self, *args, person, account, **kwargs):
        kwargs.setdefault("auto_id", "bulk-%s")
        super().__init__(*args, **kwargs)
        roles = active_roles(person, account).filter(user_type__in=CONTACT_USER_TYPES)
        self.fields["role"].set_roles(roles)
