"""The portal's forms."""

from django.contrib.auth.forms import SetPasswordForm


class NewPasswordForm(SetPasswordForm):
    """Django's form for a new password, with what is wrong with the password (too short, too
    common) under the password itself: Django puts it under the confirmation, where a person
    looks for a typo, not for a rule."""

    def clean(self):
        self.validate_passwords("new_password1", "new_password2")
        if "new_password2" not in self.errors:  # they match: now the rules
            self.validate_password_for_user(self.user, "new_password1")
        return self.cleaned_data
