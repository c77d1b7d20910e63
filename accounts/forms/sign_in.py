from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError


class SignInForm(AuthenticationForm):
    """Console sign-in. While the sign-in throttle refuses (it sets `refusal`), the form shows
    why and checks no password at all."""

    refusal = ""

    def clean(self):
        if self.refusal:
            raise ValidationError(self.refusal, code="throttled")
        return super().clean()
