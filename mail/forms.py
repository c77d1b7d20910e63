from django import forms
from django.db import transaction

from accounts import audit
from mail import brand, custom_emails
from mail.models import SenderIdentity

FIELDS = ("from_name", "from_email", "reply_to", "accent_color")


class SenderIdentityForm(forms.ModelForm):
    class Meta:
        model = SenderIdentity
        fields = FIELDS
        help_texts = {
            "from_name": "Shown as the sender, e.g. “Acme Partner Portal”. Empty: the MSSP's.",
            "from_email": "On the portal owner's own domain, once its DNS records below are "
            "published. Empty: the MSSP's address.",
            "reply_to": "Where a user's reply goes, e.g. the owner's support desk. Empty: "
            "replies go to the sender address.",
            "accent_color": "Buttons and links in the emails and on the portal's pages, e.g. "
            "#0f766e. Empty: the console's blue.",
        }
        widgets = {"accent_color": forms.TextInput(attrs={"placeholder": "#1d4ed8"})}

    def clean_from_name(self):
        name = self.cleaned_data["from_name"]
        # A line break in a header is a header injection; other control characters garble it.
        if any(ord(character) < 32 or ord(character) == 127 for character in name):
            raise forms.ValidationError("Use one line of plain text.")
        return " ".join(name.split())

    def clean_accent_color(self):
        color = self.cleaned_data["accent_color"].strip().lower()
        if color and brand.problem(color):
            raise forms.ValidationError(brand.problem(color))
        return color

    def save_audited(self, *, by, ip):
        """Saves with its audit event in one transaction; False when nothing changed."""
        before = {field: self.initial.get(field, "") for field in FIELDS}
        after = {field: self.cleaned_data[field] for field in FIELDS}
        if before == after:
            return False
        with transaction.atomic():
            identity = self.save()
            audit.record(
                "change_sender",
                by=by,
                portal_account=identity.portal_account,
                before=before,
                after=after,
                ip=ip,
            )
        return True


class CustomEmailForm(forms.Form):
    subject = forms.CharField(max_length=200)
    body = forms.CharField(max_length=5000, widget=forms.Textarea(attrs={"rows": 12}))

    def __init__(self, *args, kind, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind
        names = ", ".join(f"{{{name}}} {what}" for name, what in custom_emails.NAMES.items())
        self.fields["body"].help_text = f"Placeholders: {names}."
        self.fields["subject"].help_text = "Placeholders: {name} and {portal}."

    def clean(self):
        cleaned = super().clean()
        if "subject" in cleaned and "\n" in cleaned["subject"]:
            self.add_error("subject", "Use one line.")
        if "subject" in cleaned and "body" in cleaned:
            wrong = custom_emails.problems(self.kind, cleaned["subject"], cleaned["body"])
            for field, message in wrong.items():
                self.add_error(field, message)
        return cleaned


class LogoForm(forms.Form):
    # A FileField, not an ImageField: mail.logos decodes the image itself, once, with limits.
    image = forms.FileField(
        label="Logo",
        help_text="PNG, JPEG, GIF or WebP, up to 1 MB. Shown 48 pixels high at the top of every "
        "email and on the portal's pages; a wide logo on a transparent background looks best.",
    )
