from django.contrib.auth.backends import ModelBackend
from django.db.models import Q

from accounts.models import User


class ConsoleBackend(ModelBackend):
    """Console sign-in by email: MSSP staff, and portal-account admins. Email is unique per
    portal account only, so one address may match several admin seats; the password decides."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if "portal_account" in kwargs:
            return None  # a portal sign-in: console credentials never open the portal
        email = (username or kwargs.get("email") or "").strip().lower()
        if not email or password is None:
            return None
        candidates = User.objects.filter(
            Q(portal_account__isnull=True) | Q(is_account_admin=True), email=email
        ).select_related("contact")
        for user in candidates:
            if user.check_password(password) and user.can_use_console():
                return user
        if not candidates:
            User().set_password(password)  # same work as a real check: no timing tells
        return None


class PortalBackend(ModelBackend):
    """Portal sign-in: email + password within one portal account."""

    def authenticate(self, request, portal_account=None, email=None, password=None, **kwargs):
        if portal_account is None or not email or password is None:
            return None
        user = (
            User.objects.filter(portal_account=portal_account, email=email.strip().lower())
            .select_related("contact")
            .first()
        )
        if user is None:
            User().set_password(password)
            return None
        if user.check_password(password):
            return user  # the view tells an inactive user why; it never signs them in
        return None
