"""The portal as a portal user sees it: enough for every console email to lead somewhere real.
Links are scanner-safe: GET shows a page with one button; only its POST uses the token."""

from django.contrib import auth
from django.contrib.auth.forms import SetPasswordForm
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from accounts import lifecycle, tokens
from accounts.audit import client_ip
from accounts.errors import InvalidToken
from accounts.models import PortalAccount, TokenPurpose, UserState

BLOCKED_MESSAGE = "Your account may be temporarily disabled, please contact the administrator."
SECTIONS = {"courses": "Courses", "communities": "Communities", "affiliates": "Affiliates"}
PORTAL_BACKEND = "accounts.backends.PortalBackend"


def _portal_user(request, account):
    user = request.user
    if user.is_authenticated and user.portal_account_id == account.pk:
        return user
    return None


def _sign_in(request, user):
    auth.login(request, user, backend=PORTAL_BACKEND)


def home(request, slug):
    account = get_object_or_404(PortalAccount, slug=slug)
    user = _portal_user(request, account)
    if user is None:
        return redirect("portal-login", slug=slug)
    section = request.GET.get("section", "")
    return render(
        request,
        "portal/home.html",
        {"account": account, "sections": SECTIONS, "section": SECTIONS.get(section)},
    )


@require_http_methods(["GET", "POST"])
def login(request, slug):
    account = get_object_or_404(PortalAccount, slug=slug)
    error = ""
    if request.method == "POST":
        user = auth.authenticate(
            request,
            portal_account=account,
            email=request.POST.get("email", ""),
            password=request.POST.get("password", ""),
        )
        if user is not None and user.is_active:
            _sign_in(request, user)
            return redirect("portal-home", slug=slug)
        if user is not None and user.state == UserState.UNCONFIRMED:
            error = "Your account is not activated yet. Use the link in your invitation email."
        elif user is not None:
            error = BLOCKED_MESSAGE
        else:
            error = "That email and password do not match. Check them and try again."
    return render(request, "portal/login.html", {"account": account, "error": error})


@require_http_methods(["POST"])
def logout(request, slug):
    auth.logout(request)
    return redirect("portal-login", slug=slug)


def _invalid_link(request, account, error):
    return render(
        request, "portal/link_invalid.html", {"account": account, "error": error}, status=400
    )


def _blocked(request, account):
    return render(
        request, "portal/blocked.html", {"account": account, "message": BLOCKED_MESSAGE}, status=403
    )


def _token_page(request, slug, token, purpose):
    """Shared shape of a link landing: check the token on GET, use it only on POST."""
    account = get_object_or_404(PortalAccount, slug=slug)
    try:
        return tokens.peek(token, purpose, account), account, None
    except InvalidToken as error:
        return None, account, _invalid_link(request, account, error)


@require_http_methods(["GET", "POST"])
def activate(request, slug, token):
    found, account, failure = _token_page(request, slug, token, TokenPurpose.ACTIVATION)
    if failure:
        return failure
    user = found.user
    form = SetPasswordForm(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            tokens.redeem(token, TokenPurpose.ACTIVATION, account)
        except InvalidToken as error:
            return _invalid_link(request, account, error)
        user = lifecycle.activate(user, form.cleaned_data["new_password1"], ip=client_ip(request))
        if not user.is_active:
            return _blocked(request, account)
        _sign_in(request, user)
        return redirect("portal-home", slug=slug)
    return render(
        request,
        "portal/set_password.html",
        {"account": account, "form": form, "person": user, "activating": True},
    )


@require_http_methods(["GET", "POST"])
def reset(request, slug, token):
    found, account, failure = _token_page(request, slug, token, TokenPurpose.PASSWORD_RESET)
    if failure:
        return failure
    user = found.user
    form = SetPasswordForm(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            tokens.redeem(token, TokenPurpose.PASSWORD_RESET, account)
        except InvalidToken as error:
            return _invalid_link(request, account, error)
        if not user.is_active:
            return _blocked(request, account)
        form.save()
        tokens.revoke(user, [TokenPurpose.PASSWORD_RESET])
        _sign_in(request, user)
        return redirect("portal-home", slug=slug)
    return render(
        request,
        "portal/set_password.html",
        {"account": account, "form": form, "person": user, "activating": False},
    )


@require_http_methods(["GET", "POST"])
def link(request, slug, token, purpose=TokenPurpose.LOGIN_EMAIL):
    """A sign-in link: from a login email (or access-restored email), or a magic link an admin
    generated in the console (purpose MAGIC_LINK). Both may open a portal section."""
    found, account, failure = _token_page(request, slug, token, purpose)
    if failure:
        return failure
    if request.method == "POST":
        try:
            used = tokens.redeem(token, purpose, account)
        except InvalidToken as error:
            return _invalid_link(request, account, error)
        if not used.user.is_active:
            return _blocked(request, account)
        _sign_in(request, used.user)
        target = f"?section={used.target}" if used.target in SECTIONS else ""
        return redirect(f"{account.portal_path()}{target}")
    return render(request, "portal/link_confirm.html", {"account": account, "person": found.user})
