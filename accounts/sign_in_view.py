"""The console's sign-in page. The throttle itself is accounts.sign_in_guard, applied by the
authentication backend; this view only answers 429 while it makes the person wait."""

from django.contrib.auth import BACKEND_SESSION_KEY
from django.contrib.auth.views import LoginView
from django.forms.forms import NON_FIELD_ERRORS

from accounts.forms.sign_in import SignInForm
from accounts.permissions import CONSOLE_BACKEND


class SignInView(LoginView):
    form_class = SignInForm

    def dispatch(self, request, *args, **kwargs):
        # Only a console session skips the page; a portal session sent here by a console page
        # would be sent straight back, in a loop.
        console_session = request.session.get(BACKEND_SESSION_KEY) == CONSOLE_BACKEND
        self.redirect_authenticated_user = console_session
        return super().dispatch(request, *args, **kwargs)

    def form_invalid(self, form):
        status = 429 if form.has_error(NON_FIELD_ERRORS, "throttled") else 200
        return self.render_to_response(self.get_context_data(form=form), status=status)
