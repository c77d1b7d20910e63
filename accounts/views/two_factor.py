"""The console's second factor: enter a code after the password (and again before the most
dangerous actions), set the authenticator app up, and manage it on the Two-factor page."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts import sign_in_guard, two_factor
from accounts.errors import LifecycleError
from accounts.permissions import console_view, fresh_code_view, password_checked_view, step_up
from helpers.client_ip import client_ip


def _next_page(request):
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(wanted, {request.get_host()}, request.is_secure()):
        return wanted
    return "/"


def _gated(request):
    """Whether the console waits for this step: its menus would only lead back here, so the
    page shows none (base.html)."""
    return two_factor.what_the_session_needs(request) is not None


def _again(request, page, context, error, status):
    context = {**context, "error": str(error)}
    return render(request, f"accounts/two_factor/{page}.html", context, status=status)


@never_cache
@password_checked_view
@require_http_methods(["GET", "POST"])
def verify(request):
    """The code for this session, after the password, or again before a dangerous action."""
    if not two_factor.is_on(request.user):
        return redirect("two-factor-set-up")
    step_up = request.GET.get("step_up") == "1" or request.POST.get("step_up") == "1"
    context = {"next": _next_page(request), "step_up": step_up, "gated": _gated(request)}
    if request.method == "POST":
        try:
            two_factor.verify(request, request.POST.get("code", ""), ip=client_ip(request))
        except sign_in_guard.LockedOut as locked_out:
            return _again(request, "verify", context, locked_out, 429)
        except LifecycleError as error:
            return _again(request, "verify", context, error, 400)
        return redirect(context["next"])
    return render(request, "accounts/two_factor/verify.html", context)


@never_cache
@password_checked_view
@require_http_methods(["GET", "POST"])
def set_up(request):
    """Scan the QR code, type the first code: two-factor is on, and the recovery codes show."""
    if two_factor.is_on(request.user):
        # Replacing the app throws the old one and the recovery codes away and counts as a
        # fresh code: it needs a fresh code of the old one first, as any step-up action does.
        if not request.user.is_verified():
            return redirect("two-factor-verify")
        if (asked := step_up(request)) is not None:
            return asked
    device = two_factor.app_being_set_up(request.user)
    context = {
        "next": _next_page(request),
        "qr_code": two_factor.qr_code_data_uri(device),
        "secret": two_factor.secret_for_typing(device),
        "required": two_factor.required_for(request.user),
        "gated": _gated(request),
        # Sent here by an action that needs a second factor (permissions.step_up).
        "for_an_action": request.GET.get("step_up") == "1",
    }
    if request.method == "POST":
        try:
            codes = two_factor.confirm_app(
                request, device, request.POST.get("code", ""), ip=client_ip(request)
            )
        except sign_in_guard.LockedOut as locked_out:
            return _again(request, "set_up", context, locked_out, 429)
        except LifecycleError as error:
            return _again(request, "set_up", context, error, 400)
        return render(
            request,
            "accounts/two_factor/recovery_codes.html",
            {"codes": codes, "next": context["next"], "just_turned_on": True},
        )
    return render(request, "accounts/two_factor/set_up.html", context)


@never_cache
@console_view
def manage(request):
    user = request.user
    context = {
        "is_on": two_factor.is_on(user),
        "required": two_factor.required_for(user),
        "codes_left": two_factor.recovery_codes_left(user),
    }
    return render(request, "accounts/two_factor/manage.html", context)


@never_cache
@console_view
@require_POST
@fresh_code_view
def recovery_codes(request):
    codes = two_factor.replace_recovery_codes(request, ip=client_ip(request))
    context = {"codes": codes, "next": reverse("two-factor")}
    return render(request, "accounts/two_factor/recovery_codes.html", context)


@console_view
@require_POST
def turn_off(request):
    try:
        two_factor.turn_off(request, request.POST.get("code", ""), ip=client_ip(request))
    except (LifecycleError, sign_in_guard.LockedOut) as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Two-factor sign-in is off.")
    return redirect("two-factor")
