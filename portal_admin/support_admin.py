"""The Django admin as support staff's read-only lookup (/support/): signed in through the
console's backend, throttle and second factor, like the console itself."""

from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.auth.models import Group
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import two_factor
from accounts.forms.sign_in import SupportSignInForm
from accounts.permissions import TWO_FACTOR_PAGES


class SupportAdminSite(admin.AdminSite):
    site_header = "Portal Admin — support"
    site_title = "Portal Admin support"
    login_form = SupportSignInForm

    def has_permission(self, request):
        return super().has_permission(request) and not two_factor.what_the_session_needs(request)

    def password_change(self, request, extra_context=None):
        # Django's own page changed the password with no audit event and no fresh code; the
        # admin is for looking things up.
        raise Http404("Passwords are not changed in the support admin.")

    def login(self, request, extra_context=None):
        # Staff who typed their password still owe their code: the console's page asks for it.
        user = request.user
        if request.method == "GET" and user.is_active and user.is_staff:
            needed = two_factor.what_the_session_needs(request)
            if needed:
                back = request.GET.get("next") or reverse("admin:index")
                return redirect(f"{reverse(TWO_FACTOR_PAGES[needed])}?{urlencode({'next': back})}")
        response = super().login(request, extra_context)
        if getattr(request, "sign_in_locked_out", None) is not None:
            response.status_code = 429  # as the console's sign-in answers a wait
        return response


# What libraries register on the admin by themselves: the second factors' secrets (an
# authenticator's key, the recovery codes) and auth's groups, all writable. Support staff
# reading or planting a person's second factor, outside the audit log, would undo it; the
# console is where a second factor is set up, replaced or turned off.
NOT_FOR_SUPPORT = (TOTPDevice, StaticDevice, Group)


def drop_what_support_must_not_touch():
    for model in NOT_FOR_SUPPORT:
        if admin.site.is_registered(model):
            admin.site.unregister(model)
