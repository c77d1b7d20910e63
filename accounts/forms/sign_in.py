from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError


class ExplainsLockouts:
    """A sign-in form that says why while the sign-in throttle makes the person wait (the
    backend checked no password then, and left the reason on the request)."""

    def clean(self):
        try:
            return super().clean()
        except ValidationError:
            locked_out = getattr(self.request, "sign_in_locked_out", None)
            if locked_out is not None:
                raise ValidationError(str(locked_out), code="throttled") from None
            raise


class SignInForm(ExplainsLockouts, AuthenticationForm):
    """Console sign-in."""


class SupportSignInForm(ExplainsLockouts, AdminAuthenticationForm):
    """The support admin's sign-in (/support/login/): the same backend, the same throttle."""
