from django import forms
from django.urls import reverse

from accounts import scoping
from accounts.models import UserType


class RoleChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, role):
        return role.name


def active_roles(person, account):
    return scoping.roles(person, account).filter(active=True).order_by("name")


class ChangeRoleForm(forms.Form):
    role = RoleChoiceField(queryset=None, empty_label=None, label="New role")

    def __init__(self, *args, person, account, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].queryset = active_roles(person, account)


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
    name = forms.CharField(label="Name", required=False, max_length=200)
    email = forms.EmailField(label="Email", required=False)
    user_type = forms.ChoiceField(label="User type", choices=UserType.choices)
    role = RoleChoiceField(queryset=None, empty_label="Pick a role", label="Role")
    send_invitation = forms.BooleanField(
        label="Send the invitation email now", required=False, initial=True
    )

    def __init__(self, *args, person, account, **kwargs):
        super().__init__(*args, **kwargs)
        self.person, self.account = person, account
        self.fields["role"].queryset = active_roles(person, account)
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
            if data.get("user_type") == UserType.EMPLOYEE:
                self.add_error(
                    "user_type", "Employees are not CRM contacts: pick partner or customer."
                )
        else:
            data["contact"] = None
            if not data.get("name"):
                self.add_error("name", "Enter the person's name, or a contact id.")
            if not data.get("email") and "email" not in self.errors:
                self.add_error("email", "Enter the person's email, or a contact id.")
        return data
