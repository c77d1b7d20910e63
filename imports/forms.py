from django import forms

from accounts.models import UserType
from imports.column_mapping import PORTAL_USER_FIELDS
from imports.csv_reader import column_letter


class UploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="Columns ContactId and Role; other columns are ignored.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )
    user_type = forms.ChoiceField(
        label="User type",
        choices=UserType.choices,
        initial=UserType.PARTNER,
        help_text="Every user created by this import gets this user type.",
    )


class MapForm(forms.Form):
    """One select per field of the import, listing the file's header columns."""

    def __init__(self, *args, header, mapping, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("", "— no column —")]
        choices += [
            (str(index), f"{column_letter(index)}: {name or '(no header)'}")
            for index, name in enumerate(header)
        ]
        for field in PORTAL_USER_FIELDS:
            initial = mapping.get(field.name)
            self.fields[field.name] = forms.ChoiceField(
                label=field.label,
                choices=choices,
                required=False,
                initial="" if initial is None else str(initial),
            )

    def choices(self):
        """{field name: column index or None}, for column_mapping.map_columns."""
        return {
            name: None if value in ("", None) else int(value)
            for name, value in self.cleaned_data.items()
        }


class OptionsForm(forms.Form):
    send_activation = forms.BooleanField(
        label="Send activation emails",
        required=False,
        help_text="Each new user gets an invitation to set a password. "
        "Without it, users are created silently; reinvite them later.",
    )
