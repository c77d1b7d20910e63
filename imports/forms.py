from django import forms

from accounts.forms.users import RoleChoiceField, active_roles
from accounts.models import CONTACT_USER_TYPES
from imports.column_mapping import PORTAL_USER_FIELDS
from imports.csv_reader import column_letter
from imports.models import ImportJob


class UploadForm(forms.Form):
    target = forms.ChoiceField(
        label="Import",
        choices=ImportJob.Target.choices,
        initial=ImportJob.Target.PORTAL_USERS,
        required=False,  # a form without it (older pages, scripts) imports portal users
        # The columns are described above the form; this says only what the next step does.
        help_text="A portal user's role decides their user type (partner or customer); for a "
        "file without a Role column, the next step asks for one role for every row.",
    )
    file = forms.FileField(
        label="CSV file",
        help_text="Other columns are ignored.",
        error_messages={
            # Django's own words ("The submitted file is empty.") say nothing of what to do.
            "empty": "The file is empty. Export the sheet as CSV with a header row (ContactId, "
            "Role for portal users; Name for contacts) and upload it again.",
            "required": "Choose the CSV file to import.",
        },
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )

    def clean_target(self):
        return self.cleaned_data.get("target") or ImportJob.Target.PORTAL_USERS


class MapForm(forms.Form):
    """One select per field of the import, listing the file's header columns."""

    def __init__(self, *args, header, mapping, fields=PORTAL_USER_FIELDS, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("", "— no column —")]
        choices += [
            (str(index), f"{column_letter(index)}: {name or '(no header)'}")
            for index, name in enumerate(header)
        ]
        for field in fields:
            initial = mapping.get(field.name)
            self.fields[field.name] = forms.ChoiceField(
                label=field.label if field.required else f"{field.label} (optional)",
                choices=choices,
                required=False,
                initial="" if initial is None else str(initial),
            )

    def choices(self):
        """{field name: column index or None}, for column_mapping.map_columns."""
        return {
            name: None if value in ("", None) else int(value)
            for name, value in self.cleaned_data.items()
            if name != "default_role"
        }


class PortalUsersMapForm(MapForm):
    """The portal-user import's columns, and the role of rows without one: a file without a
    Role column, or a row whose Role cell is empty, gets it (and its user type)."""

    def __init__(self, *args, person, account, default_role=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["default_role"] = RoleChoiceField(
            queryset=None,
            required=False,
            empty_label="None: every row names its role",
            label="Role for rows without one",
            help_text="For a file without a Role column, or rows whose Role cell is empty. "
            "The role decides the user type (and which licenses the users take).",
            error_messages={
                "invalid_choice": "That role is inactive or not a role of this portal account. "
                "Pick an active partner or customer role."
            },
            initial=default_role,
        )
        # The import creates users for CRM contacts: partner and customer roles only.
        roles = active_roles(person, account).filter(user_type__in=CONTACT_USER_TYPES)
        self.fields["default_role"].set_roles(roles)
        # Right under the Role column it stands in for.
        names = list(self.fields)
        names.remove("default_role")
        names.insert(names.index("role") + 1, "default_role")
        self.order_fields(names)

    def default_role_id(self):
        role = self.cleaned_data.get("default_role")
        return role.pk if role else None


class OptionsForm(forms.Form):
    send_activation = forms.BooleanField(
        label="Send activation emails",
        required=False,
        help_text="Each new user gets an invitation to set a password. "
        "Without it, users are created silently; reinvite them later.",
    )
