"""Console sign-in throttling: after too many failed sign-ins for one email or from one IP
address, further attempts are refused for a while without checking any password.

Counters live in Django's cache (Redis in production) so every web process sees the same
counts; the portal's own sign-in has its own rules."""

from django.conf import settings
from django.contrib.auth.views import LoginView
from django.forms.forms import NON_FIELD_ERRORS

from accounts.forms.sign_in import SignInForm
from helpers import attempt_counter
from helpers.client_ip import client_ip


def _window_seconds():
    return settings.SIGN_IN_FAILURE_WINDOW_MINUTES * 60


def refusal_message():
    return (
        "Too many failed sign-in attempts. "
        f"Wait {settings.SIGN_IN_FAILURE_WINDOW_MINUTES} minutes and try again."
    )


def _normalized(email):
    return (email or "").strip().lower()


def _keys(email, ip):
    keys = []
    if _normalized(email):
        keys.append(f"sign-in-failures:email:{attempt_counter.email_digest(email)}")
    if ip:
        keys.append(f"sign-in-failures:ip:{ip}")
    return keys


def is_refused(email, ip):
    return attempt_counter.over_limit(_keys(email, ip), settings.SIGN_IN_MAX_FAILURES)


def record_failure(email, ip):
    attempt_counter.count(_keys(email, ip), settings.SIGN_IN_MAX_FAILURES, _window_seconds())


def clear(email):
    attempt_counter.forget(_keys(email, None))


class SignInView(LoginView):
    """Django's sign-in view, counting failures and refusing (429) once there are too many."""

    form_class = SignInForm
    redirect_authenticated_user = True

    def get_form(self, form_class=None):
        form = super().get_form(form_class)
        if self.request.method == "POST" and is_refused(
            form.data.get("username"), client_ip(self.request)
        ):
            form.refusal = refusal_message()
        return form

    def form_valid(self, form):
        clear(form.cleaned_data["username"])
        return super().form_valid(form)

    def form_invalid(self, form):
        if form.has_error(NON_FIELD_ERRORS, "throttled"):
            return self.render_to_response(self.get_context_data(form=form), status=429)
        # Only a checked email + password counts; an empty field checked nothing.
        if form.has_error(NON_FIELD_ERRORS):
            record_failure(form.data.get("username"), client_ip(self.request))
        return super().form_invalid(form)
