from django.contrib.auth.backends import ModelBackend

from accounts import sign_in_audit, sign_in_guard
from accounts.models import User
from helpers.client_ip import client_ip


def _guarded(request, identity):
    """Raise LockedOut (and leave it on the request for the page to explain) while the identity
    or the client must wait; returns the client's IP."""
    ip = client_ip(request) if request is not None else None
    try:
        sign_in_guard.check(identity, ip)
    except sign_in_guard.LockedOut as locked_out:
        if request is not None:
            request.sign_in_locked_out = locked_out
        raise
    return ip


def _counted(user, identity, ip):
    if user is None:
        sign_in_guard.failed(identity, ip)
    else:
        sign_in_guard.succeeded(identity, ip)
    return user


class ConsoleBackend(ModelBackend):
    """Console sign-in by email: MSSP staff, and portal-account admins. Email is unique per
    portal account only, so one address may match several admin seats; the password decides.
    Every door that signs staff in (the console, the support admin) comes through here, and so
    through the sign-in throttle."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if "portal_account" in kwargs:
            return None  # a portal sign-in: console credentials never open the portal
        email = (username or kwargs.get("email") or "").strip().lower()
        if not email or password is None:
            return None
        identity = sign_in_guard.console_identity(email)
        ip = _guarded(request, identity)
        return _counted(self._check(email, password), identity, ip)

    def get_user(self, user_id):
        # ModelBackend's, with what every console request of an account admin reads in the same
        # query: the contact (is_active) and the portal account (permissions, the page's header).
        user = User.objects.filter(pk=user_id).select_related("contact", "portal_account").first()
        return user if user is not None and self.user_can_authenticate(user) else None

    def _check(self, email, password):
        candidates = User.objects.console_candidates(email).select_related("contact")
        for user in candidates:
            if user.check_password(password) and user.can_use_console():
                return user
        if not candidates:
            User().set_password(password)  # same work as a real check: no timing tells
        return None


class PortalBackend(ModelBackend):
    """Portal sign-in: email + password within one portal account, through the sign-in
    throttle."""

    def authenticate(self, request, portal_account=None, email=None, password=None, **kwargs):
        if portal_account is None or not email or password is None:
            return None
        identity = sign_in_guard.portal_identity(portal_account, email)
        # Called directly by the portal, so no user_login_failed: the audit events are ours.
        attempt = {"door": "portal", "method": "password", "email": email}
        try:
            ip = _guarded(request, identity)
        except sign_in_guard.LockedOut as locked_out:
            sign_in_audit.refused(
                request, **attempt, portal_account=portal_account, locked_out=locked_out
            )
            raise
        user = self._check(portal_account, email, password)
        if user is None:
            sign_in_audit.refused(
                request, **attempt, portal_account=portal_account, reason="wrong password"
            )
            sign_in_guard.failed(identity, ip)
        else:
            sign_in_guard.succeeded_on_portal(identity, ip, user)
        return user

    def get_user(self, user_id):
        # A portal session stays attached to its user whose access has ended (a contact deleted
        # in the CRM), so that the portal can sign them out with the reason instead of silently.
        return User.objects.filter(pk=user_id).select_related("contact").first()

    def _check(self, portal_account, email, password):
        email = email.strip().lower()
        # A NUL is in no stored address, and PostgreSQL refuses it in a query (a 500).
        user = (
            User.objects.filter(portal_account=portal_account, email=email)
            .select_related("contact")
            .first()
            if "\x00" not in email
            else None
        )
        if user is None:
            User().set_password(password)
            return None
        if user.check_password(password):
            return user  # the view tells an inactive user why; it never signs them in
        return None
