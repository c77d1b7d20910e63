"""The console's form for a new API token: a name, what it may do (its scope) and when it
expires. Every error is said in words an MSSP admin can act on."""

from django import forms

from accounts.errors import LifecycleError
from api import api_tokens
from api.models import ApiToken
from helpers.one_line_text import refuse_control_characters

Scope = ApiToken.Scope

SCOPE_HELP = {
    Scope.SYNC: "Contact sync only: upsert, delete, restore and merge contacts. For a CRM "
    "connector.",
    Scope.READ: "Look up a contact's portal user, nothing else. For a CRM card that only shows "
    "the status.",
    Scope.FULL: "Everything: contact sync, look-ups and every portal-user action, magic links "
    "and the account admin's user included.",
}


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=ApiToken._meta.get_field("name").max_length,
        validators=[refuse_control_characters],
        error_messages={
            "required": "Name the token after what will use it, e.g. 'Salesforce sync'.",
            "max_length": "Keep the token's name to 100 characters.",
        },
    )
    scope = forms.ChoiceField(
        choices=Scope.choices,
        error_messages={
            "required": "Pick what the token may do: contact sync, read, or full access.",
            "invalid_choice": "Pick what the token may do: contact sync, read, or full access.",
        },
    )
    expires_on = forms.DateField(
        required=False,
        input_formats=["%Y-%m-%d"],
        error_messages={
            "invalid": "Enter the expiry date as YYYY-MM-DD, or leave it empty for a token that "
            "never expires.",
        },
    )

    def __init__(self, *args, account, **kwargs):
        super().__init__(*args, **kwargs)
        self.account = account

    def scope_choices(self):
        """(value, label, help, checked) for each scope's radio button."""
        chosen = self["scope"].value()
        return [
            (value, label, SCOPE_HELP[value], value == chosen) for value, label in Scope.choices
        ]

    def clean_name(self):
        # Checked here as well as when saving, so that every error of the form shows at once.
        name = self.cleaned_data["name"]
        if self.account.api_tokens.live().filter(name=name).exists():
            raise forms.ValidationError(
                f"A token named '{name}' already exists. Pick another name."
            )
        return name

    def clean_expires_on(self):
        date = self.cleaned_data["expires_on"]
        if date is None:
            return None
        try:
            self.cleaned_data["expires_at"] = api_tokens.expiry_on(date)
        except LifecycleError as error:
            raise forms.ValidationError(str(error)) from None
        return date

    def create(self, *, by, ip):
        """(token, secret), or None with the error on the form when another admin took the
        name between validation and saving."""
        data = self.cleaned_data
        try:
            return api_tokens.create_token(
                self.account,
                data["name"],
                by=by,
                ip=ip,
                scope=data["scope"],
                expires_at=data.get("expires_at"),
            )
        except LifecycleError as error:
            self.add_error("name", str(error))
            return None
