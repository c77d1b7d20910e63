"""The endpoint form: a URL the worker may send to, the events it wants, on or off."""

from django import forms

from helpers.one_line_text import refuse_control_characters
from webhooks import endpoints, targets
from webhooks.models import Endpoint, EventType


class EndpointForm(forms.Form):
    url = forms.CharField(
        max_length=Endpoint._meta.get_field("url").max_length,
        error_messages={
            "required": "Enter the URL that receives the events, such as "
            "https://crm.example.com/hooks.",
            "max_length": "Keep the URL to 2,000 characters.",
        },
    )
    description = forms.CharField(
        required=False,
        max_length=200,
        validators=[refuse_control_characters],
        error_messages={"max_length": "Keep the description to 200 characters."},
    )
    events = forms.MultipleChoiceField(
        choices=EventType.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "required": "Pick at least one event to send.",
            "invalid_choice": "Pick events from the list.",
        },
    )
    active = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, account, endpoint=None, **kwargs):
        if endpoint is not None and not args:
            kwargs.setdefault(
                "initial",
                {
                    "url": endpoint.url,
                    "description": endpoint.description,
                    "events": endpoint.events,
                    "active": endpoint.active,
                },
            )
        super().__init__(*args, **kwargs)
        self.account, self.endpoint = account, endpoint

    def clean_url(self):
        url = self.cleaned_data["url"].strip()
        try:
            _scheme, host, _port, _path = targets.parse(url)
            targets.check_literal(host)
        except targets.RefusedTarget as refused:
            raise forms.ValidationError(str(refused)) from None
        return url

    def clean(self):
        cleaned = super().clean()
        if self.endpoint is None and (problem := endpoints.too_many(self.account)):
            raise forms.ValidationError(problem)
        url = cleaned.get("url")
        if url and endpoints.taken(self.account, url, self.endpoint):
            self.add_error("url", endpoints.SAME_URL)
        return cleaned

    def event_choices(self):
        """(value, label, checked) for each event's checkbox."""
        chosen = set(self["events"].value() or [])
        return [(value, label, value in chosen) for value, label in EventType.choices]
