from django import forms

from accounts.forms.users import RoleChoiceField, active_roles
from accounts.models import UserType

# A role picked from a stale page may have been deactivated since: say what to do.
ROLE_ERRORS = {
    "required": "Pick a role.",
    "invalid_choice": "That role is inactive or not a role of this portal account. "
    "Pick an active role.",
}


class EnablePortalUserForm(forms.Form):
    """The card of a contact without a portal user: give it one."""

    role = RoleChoiceField(
        queryset=None, empty_label="Pick a role", label="Role", error_messages=ROLE_ERRORS
    )
    user_type = forms.ChoiceField(
        label="User type",
        choices=[(UserType.PARTNER, "Partner"), (UserType.CUSTOMER, "Customer")],
        initial=UserType.PARTNER,
        error_messages={"invalid_choice": "Pick partner or customer."},
    )
    send_invitation = forms.BooleanField(
        label="Send the invitation email now", required=False, initial=True
    )

    def __init__(self, *args, person, account, **kwargs):
        kwargs.setdefault("auto_id", "enable-%s")
        super().__init__(*args, **kwargs)
        self.fields["role"].queryset = active_roles(person, account)


class CardRoleForm(forms.Form):
    role = RoleChoiceField(
        queryset=None, empty_label=None, label="Role", error_messages=ROLE_ERRORS
    )

    def __init__(self, *args, person, account, **kwargs):
        kwargs.setdefault("auto_id", "card-%s")
        super().__init__(*args, **kwargs)
        self.fields["role"].queryset = active_roles(person, account)
