"""The console's sign-in page. The throttle itself is accounts.sign_in_guard, applied by the
authentication backend; this view only answers 429 while it makes the person wait."""

from django.contrib.auth.views import LoginView
from django.forms.forms import NON_FIELD_ERRORS

from accounts.forms.sign_in import SignInForm


class SignInView(LoginView):
    form_class = SignInForm
    redirect_authenticated_user = True

    def form_invalid(self, form):
        status = 429 if form.has_error(NON_FIELD_ERRORS, "throttled") else 200
        return self.render_to_response(self.get_context_data(form=form), status=status)
