"""A second factor for the console: a TOTP authenticator app (django-otp's TOTPDevice) with
one-time recovery codes (django-otp's StaticDevice), never hand-written TOTP.

Who must have one: MSSP staff when TWO_FACTOR_REQUIRED_FOR_MSSP_STAFF is on (the default), and a
portal account's admin when the account's policy asks for it; anyone else may turn it on. A
console session with a password only is sent to enter a code (or to set up the app, if they
must and have none) before any console page. The most dangerous actions (an API token, a new
account admin, a magic link for somebody else) ask for a fresh code when the last one is older
than TWO_FACTOR_STEP_UP_MINUTES. Wrong codes go through the sign-in throttle like passwords, on
top of django-otp's own per-device delay."""

import base64
import io
import time

import django_otp
import qrcode
from django.conf import settings
from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from qrcode.image.svg import SvgPathImage

from accounts import audit, sign_in_audit, sign_in_guard
from accounts.errors import LifecycleError

RECOVERY_CODE_COUNT = 10
VERIFIED_AT = "two_factor_verified_at"
APP_NAME = "Authenticator app"
RECOVERY_NAME = "Recovery codes"


def required_for(user):
    if user.is_mssp:
        return settings.TWO_FACTOR_REQUIRED_FOR_MSSP_STAFF
    return bool(user.is_account_admin and user.portal_account.require_two_factor)


def app_of(user):
    """The user's confirmed authenticator app, or None."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def is_on(user):
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def what_the_session_needs(request):
    """None when the console may be used; "verify" (a code for this session) or "set_up"."""
    user = request.user
    if user.is_verified():  # the session's device, which OTPMiddleware loaded already
        return None
    if is_on(user):
        return "verify"
    return "set_up" if required_for(user) else None


def fresh_enough(request):
    """Whether the session's last code is recent enough for a dangerous action."""
    verified_at = request.session.get(VERIFIED_AT, 0)
    return time.time() - verified_at <= settings.TWO_FACTOR_STEP_UP_MINUTES * 60


# --- Setting up ---


def app_being_set_up(user):
    """The unconfirmed TOTP device a set-up page shows (made once, kept across reloads)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name=APP_NAME, confirmed=False)


def qr_code_data_uri(device):
    # An <img> with a data: URI: the page's Content-Security-Policy allows data: images, and the
    # secret never leaves the page for an outside QR service. One <path> for the dark modules
    # (django_otp's write_qrcode_image draws a <rect> each: a 70 KB image instead of 20 KB, and
    # twice the time, 40 ms a page).
    svg = io.BytesIO()
    qrcode.make(device.config_url, image_factory=SvgPathImage).save(svg)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.getvalue()).decode()


def secret_for_typing(device):
    """The key in base32, in groups of four, for an app that cannot scan."""
    key = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


@transaction.atomic
def confirm_app(request, device, code, *, ip=None):
    """The first code from the app turns two-factor on. Returns the recovery codes, shown once.
    Raises LifecycleError for a wrong code."""
    user = request.user
    identity = sign_in_guard.console_identity(user.email)
    _guarded(request, identity, ip)
    if not device.verify_token(_without_spaces(code)):
        sign_in_guard.failed(identity, ip)
        raise LifecycleError("That code is not right. Enter the 6 digits the app shows now.")
    sign_in_guard.succeeded(identity, ip)
    TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    codes = _new_recovery_codes(user)
    _mark_verified(request, device)
    audit.record("turn_on_two_factor", by=user, subject=_subject(user), ip=ip)
    return codes


@transaction.atomic
def replace_recovery_codes(request, *, ip=None):
    codes = _new_recovery_codes(request.user)
    audit.record("new_recovery_codes", by=request.user, subject=_subject(request.user), ip=ip)
    return codes


@transaction.atomic
def turn_off(request, code, *, ip=None):
    user = request.user
    if required_for(user):
        raise LifecycleError("Two-factor sign-in is required for you; it cannot be turned off.")
    _check_code(request, code, ip)
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    request.session.pop(VERIFIED_AT, None)
    audit.record("turn_off_two_factor", by=user, subject=_subject(user), ip=ip)


def recovery_codes_left(user):
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


# --- Signing in ---


def verify(request, code, *, ip=None):
    """A code from the app, or a recovery code, for this session. Raises LifecycleError (a wrong
    code, counted) or sign_in_guard.LockedOut (too many)."""
    device = _check_code(request, code, ip)
    audit.record(
        "two_factor_verified",
        by=request.user,
        subject=_subject(request.user),
        ip=ip,
        detail="with a recovery code" if isinstance(device, StaticDevice) else "",
    )


def _check_code(request, code, ip):
    user = request.user
    identity = sign_in_guard.console_identity(user.email)
    _guarded(request, identity, ip)
    try:
        device = _matching_device(user, code)
    except LifecycleError:
        sign_in_guard.not_checked(identity, ip)
        raise
    if device is None:
        sign_in_guard.failed(identity, ip)
        audit.record(
            "two_factor_failed",
            by=user,
            subject=_subject(user),
            ip=ip,
            outcome="refused",
        )
        raise LifecycleError("That code is not right. Enter the 6 digits the app shows now.")
    sign_in_guard.succeeded(identity, ip)
    _mark_verified(request, device)
    return device


def _matching_device(user, code):
    code = _without_spaces(code)
    app = app_of(user)
    if app is not None and code.isdigit() and len(code) == 6:
        allowed, _ = app.verify_is_allowed()
        if not allowed:
            # django-otp's own delay after a wrong code (doubling from a second): not a guess.
            raise LifecycleError("Wait a few seconds after a wrong code, then enter the new one.")
        with transaction.atomic():
            return app if app.verify_token(code) else None
    with transaction.atomic():
        for device in StaticDevice.objects.filter(user=user, confirmed=True):
            if device.verify_token(code.lower()):  # a recovery code works once
                return device
    return None


def _guarded(request, identity, ip):
    user = request.user
    try:
        sign_in_guard.check(identity, ip)
    except sign_in_guard.LockedOut as locked_out:
        sign_in_audit.refused(
            request,
            door="console",
            method="two-factor code",
            email=user.email,
            portal_account=user.portal_account,
            user=user,
            locked_out=locked_out,
        )
        raise


def _mark_verified(request, device):
    django_otp.login(request, device)
    request.session[VERIFIED_AT] = time.time()


def _new_recovery_codes(user):
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


def _without_spaces(code):
    return "".join((code or "").split())


def _subject(user):
    # Audit events about portal users carry them as the subject; staff have no portal account.
    return user if user.portal_account_id else None
