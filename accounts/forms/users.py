from django import forms
from django.urls import reverse

from accounts import scoping
from accounts.lifecycle import EMPLOYEE_ROLE_ON_CONTACT
from accounts.models import CONTACT_USER_TYPES, UserType
from helpers.email_addresses import validate_header_safe
from helpers.one_line_text import refuse_control_characters


class RoleChoiceField(forms.ModelChoiceField):
    """A role picker whose options are grouped by user type ("Customer roles"), since the role
    decides the user type. The queryset still validates the choice."""

    def label_from_instance(self, role):
        return role.name

    def set_roles(self, queryset):
        self.queryset = queryset
        groups = {}
        for role in queryset:
            groups.setdefault(role.get_user_type_display(), []).append((role.pk, role.name))
        choices = [("", self.empty_label)] if self.empty_label is not None else []
        choices += [(f"{label} roles", options) for label, options in groups.items()]
        self.widget.choices = choices


def active_roles(person, account, *, for_user=None):
    """The active roles to pick from; for an existing user, those their contact allows (a
    partner or customer user stands on a CRM contact, an employee never does)."""
    roles = scoping.roles(person, account).filter(active=True)
    if for_user is not None:
        wanted = CONTACT_USER_TYPES if for_user.contact_id else [UserType.EMPLOYEE]
        roles = roles.filter(user_type__in=wanted)
    return roles.order_by("user_type", "name")


class ChangeRoleForm(forms.Form):
    # The confirmation says that a role of another type changes the user type (user_actions).
    role = RoleChoiceField(queryset=None, empty_label=None, label="New role")

    def __init__(self, *args, person, account, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].set_roles(active_roles(person, account, for_user=user))


class AddUserForm(forms.Form):
    """A new portal user: an existing CRM contact (by contact id), or a name + email (for
    partners and customers that creates the contact in the mirror)."""

    contact_id = forms.CharField(
        label="CRM contact",
        required=False,
        max_length=19,
        help_text=(
            "Type a name, email or contact ID and pick the contact. Leave empty to add a new "
            "person."
        ),
    )
    name = forms.CharField(
        label="Name", required=False, max_length=200, validators=[refuse_control_characters]
    )
    email = forms.EmailField(label="Email", required=False, validators=[validate_header_safe])
    role = RoleChoiceField(
        queryset=None,
        empty_label="Pick a role",
        label="Role",
        help_text="The role decides the user type (partner, customer or employee) and so the "
        "license the user takes. Employees are added by name and email, not as contacts.",
    )
    send_invitation = forms.BooleanField(
        label="Send the invitation email now", required=False, initial=True
    )

    def __init__(self, *args, person, account, **kwargs):
        super().__init__(*args, **kwargs)
        self.person, self.account = person, account
        self.fields["role"].set_roles(active_roles(person, account))
        # The contact picker (contacts.views.contact_picker) fills the field's suggestions.
        self.fields["contact_id"].widget.attrs.update(
            {
                "list": "contact-options",
                "autocomplete": "off",
                "hx-get": reverse("contact-picker", args=[account.slug]),
                "hx-trigger": "input changed delay:250ms",
                "hx-target": "#contact-options",
                "hx-swap": "outerHTML",
            }
        )

    def clean(self):
        data = super().clean()
        contact_id = data.get("contact_id", "").strip()
        if contact_id:
            contact = (
                scoping.contacts(self.person, self.account).filter(contact_id=contact_id).first()
            )
            if contact is None:
                self.add_error("contact_id", "No contact with this id in this portal account.")
            data["contact"] = contact
            role = data.get("role")
            if role is not None and not role.needs_contact:
                self.add_error("role", EMPLOYEE_ROLE_ON_CONTACT.format(role=role.name))
        else:
            data["contact"] = None
            if not data.get("name"):
                self.add_error(
                    "name", "Enter the new person's name, or pick a CRM contact above instead."
                )
            if not data.get("email") and "email" not in self.errors:
                self.add_error(
                    "email", "Enter the new person's email, or pick a CRM contact above instead."
                )
        return data


class AccessEndForm(forms.Form):
    """A user's access end date; empty: no end. The rules are lifecycle.set_access_end's."""

    access_ends_on = forms.DateField(
        required=False,
        label="Access ends on",
        help_text="The user is disabled at the start of this day (UTC). Empty: no end.",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": "Enter a date as YYYY-MM-DD, for example 2027-01-31."},
    )
