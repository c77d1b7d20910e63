"""Signing in at the console in a test as a person with an authenticator app would (the browser
tests' side; tests/conftest.py's console_sign_in does it for the test client)."""


def authenticator_code(device, *, steps_ahead=0):
    """The code the person's authenticator app would show (a later step for a second sign-in
    within the same 30 s: a code is taken once, and the next step's is accepted early)."""
    import time

    from django_otp.oath import TOTP

    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def console_sign_in(page, user, password):
    """Sign in at the console as a person with an authenticator app: password, then the code."""
    from django.urls import reverse
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    page.goto(reverse("login"))
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Code").fill(authenticator_code(device))
    page.get_by_role("button", name="Continue").click()
