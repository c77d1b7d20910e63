"""The portal as a portal user sees it: enough for every console email to lead somewhere real.
Links are scanner-safe: GET (and HEAD) shows a page with one button; only its POST uses the
token."""

import re

from django.conf import settings
from django.contrib import auth, messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from accounts import email_changes, lifecycle, sign_in_audit, sign_in_guard, tokens
from accounts.backends import PortalBackend
from accounts.errors import InvalidToken, LifecycleError
from accounts.models import PortalAccount, TokenPurpose, UserState
from accounts.portal_sections import SECTIONS
from helpers.client_ip import client_ip
from portal import email_requests, tasks, throttle
from portal.forms import NewPasswordForm

BLOCKED_MESSAGE = "Your account may be temporarily disabled, please contact the administrator."
WRONG_PASSWORD = "That email and password do not match. Check them and try again."
# The same words as accounts.tokens.redeem_code, so that a decoy answers like a real code.
WRONG_CODE = "That code is not right."
EXPIRED_CODE = "This code has expired. Ask for a new one."
PORTAL_BACKEND = "accounts.backends.PortalBackend"
# HEAD wherever GET: link scanners send HEAD, and a 405 would put the URL (with a link's live
# secret) in the log. A HEAD is answered as a GET, so it never uses a token either.
PAGE_METHODS = ["GET", "HEAD", "POST"]


def _portal_user(request, account):
    user = request.user
    if user.is_authenticated and user.portal_account_id == account.pk:
        return user
    return None


def _attempt(method, email):
    return {"door": "portal", "method": method, "email": email}


def _sign_in(request, user):
    # A portal sign-in replaces whatever session this browser had (a console session, or a
    # portal session at another account): one browser, one signed-in person, and no console
    # session stamps left behind in a portal session.
    if request.user.is_authenticated:
        auth.logout(request)
    auth.login(request, user, backend=PORTAL_BACKEND)


def home(request, slug):
    account = get_object_or_404(PortalAccount, slug=slug)
    user = _portal_user(request, account)
    if user is not None and not user.is_active:
        auth.logout(request)
        messages.error(request, BLOCKED_MESSAGE)
        user = None
    if user is None:
        return redirect("portal-login", slug=slug)
    section = request.GET.get("section", "")
    return render(
        request,
        "portal/home.html",
        {"account": account, "sections": SECTIONS, "section": SECTIONS.get(section)},
    )


def _login_page(request, account, error="", *, status=200):
    email = request.POST.get("email", "")
    return render(
        request,
        "portal/login.html",
        {"account": account, "error": error, "email": email},
        status=status,
    )


@require_http_methods(PAGE_METHODS)
def login(request, slug):
    account = get_object_or_404(PortalAccount, slug=slug)
    if request.method != "POST":
        return _login_page(request, account)
    email, password = request.POST.get("email", ""), request.POST.get("password", "")
    if not password:
        return _login_page(request, account, "Enter your password, or sign in without one below.")
    # The portal backend only: auth.authenticate() would try the console backend first, and it
    # accepts a staff member's (or another account's admin's) email and password. The backend
    # applies the sign-in throttle.
    try:
        user = PortalBackend().authenticate(
            request, portal_account=account, email=email, password=password
        )
    except sign_in_guard.LockedOut as locked_out:
        return _login_page(request, account, str(locked_out), status=429)
    if user is None:
        return _login_page(request, account, WRONG_PASSWORD)
    if not user.is_active:
        sign_in_audit.refused(
            request,
            **_attempt("password", email),
            user=user,
            reason=email_requests.why_blocked(user),
        )
        # Only after a correct password may the page admit the account exists. An unconfirmed
        # user has no usable password, so this is the disabled / contact-deleted case.
        return _login_page(
            request,
            account,
            WRONG_PASSWORD if user.state == UserState.UNCONFIRMED else BLOCKED_MESSAGE,
        )
    _sign_in(request, user)
    return redirect("portal-home", slug=slug)


def _requested_email(request):
    return lifecycle.valid_email(request.POST.get("email"))


def _email_request(request, account, what, form_page):
    """Shared shape of "email me a link / a code / a password reset": returns the page that
    refuses the request, or None once it is handled. Whoever asks, and whether or not the address
    has an account, the caller answers with the same page, text and status, in the same time: the
    request does not even look the address up. A Celery worker decides what, if anything, to
    send (portal.email_requests)."""
    email = _requested_email(request)
    if not email:
        return form_page(request, account, "Enter your email address.")
    ip = client_ip(request)
    if throttle.request_refused(account, email, ip):
        return form_page(request, account, throttle.refusal_message(), status=429)
    throttle.record_request(account, email, ip)
    if what == "code":
        # Whether a real code goes out is decided later; a decoy answers guesses for an address
        # that gets none, and is never read for one that does.
        throttle.start_decoy(account, email)
    tasks.answer_email_request_on_commit(account, email, what, ip)
    return None


def _sent_page(request, account, what):
    return render(request, "portal/email_sent.html", {"account": account, "what": what})


@require_http_methods(PAGE_METHODS)
def request_link(request, slug):
    """Email me a sign-in link (from the sign-in page, or from a link that no longer works)."""
    if request.method != "POST":
        return redirect("portal-login", slug=slug)
    account = get_object_or_404(PortalAccount, slug=slug)
    refused = _email_request(request, account, "link", _login_page)
    return refused or _sent_page(request, account, "link")


def _forgot_page(request, account, error="", *, status=200):
    return render(
        request,
        "portal/forgot_password.html",
        {"account": account, "error": error, "email": request.POST.get("email", "")},
        status=status,
    )


@require_http_methods(PAGE_METHODS)
def forgot_password(request, slug):
    account = get_object_or_404(PortalAccount, slug=slug)
    if request.method != "POST":
        return _forgot_page(request, account)
    refused = _email_request(request, account, "reset", _forgot_page)
    return refused or _sent_page(request, account, "reset")


def _code_page(request, account, *, error="", just_sent=False, status=200):
    minutes = int(settings.TOKEN_LIFETIMES[TokenPurpose.LOGIN_CODE].total_seconds() // 60)
    context = {
        "account": account,
        "email": _requested_email(request),
        "error": error,
        "just_sent": just_sent,
        "minutes": minutes,
    }
    return render(request, "portal/code.html", context, status=status)


@require_http_methods(PAGE_METHODS)
def request_code(request, slug):
    if request.method != "POST":
        return redirect("portal-code", slug=slug)
    account = get_object_or_404(PortalAccount, slug=slug)
    refused = _email_request(request, account, "code", _login_page)
    return refused or _code_page(request, account, just_sent=True)


def _check_code(account, user, email, code):
    """The token used by a right code; InvalidToken otherwise. An address that was sent no code
    (unknown, disabled, not activated) is answered by its decoy, exactly as a real code would."""
    if user is None or not user.is_active:
        raise InvalidToken(WRONG_CODE if throttle.decoy_guess(account, email) else EXPIRED_CODE)
    return tokens.redeem_code(user, code)


@require_http_methods(PAGE_METHODS)
def code(request, slug):
    """Enter the 6-digit code from a login-code email."""
    account = get_object_or_404(PortalAccount, slug=slug)
    if request.method != "POST":
        return _code_page(request, account)
    email = _requested_email(request)
    entered = re.sub(r"\s", "", request.POST.get("code", ""))
    if not email or not re.fullmatch(r"\d{6}", entered):
        # A typo costs no attempt.
        return _code_page(
            request, account, error="Enter your email and the 6 digits from the email."
        )
    ip, identity = client_ip(request), sign_in_guard.portal_identity(account, email)
    try:
        sign_in_guard.check(identity, ip)
    except sign_in_guard.LockedOut as locked_out:
        attempt = _attempt("code", email)
        sign_in_audit.refused(request, **attempt, portal_account=account, locked_out=locked_out)
        return _code_page(request, account, error=str(locked_out), status=429)
    user = email_requests.person(account, email)
    try:
        _check_code(account, user, email, entered)
    except InvalidToken as error:
        sign_in_audit.refused(
            request, **_attempt("code", email), portal_account=account, user=user, reason=str(error)
        )
        sign_in_guard.failed(identity, ip)
        return _code_page(request, account, error=str(error))
    sign_in_guard.succeeded_on_portal(identity, ip, user)
    _sign_in(request, user)
    return redirect("portal-home", slug=slug)


@require_http_methods(["POST"])
def logout(request, slug):
    auth.logout(request)
    return redirect("portal-login", slug=slug)


def _invalid_link(request, account, error, purpose):
    """A link that cannot be used, with the way to a new one (the page depends on the purpose)."""
    context = {"account": account, "error": error, "purpose": purpose}
    return render(request, "portal/link_invalid.html", context, status=400)


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
        return None, account, _invalid_link(request, account, error, purpose)


@require_http_methods(PAGE_METHODS)
def activate(request, slug, token):
    found, account, failure = _token_page(request, slug, token, TokenPurpose.ACTIVATION)
    if failure:
        return failure
    user = found.user
    if user.contact_deleted:  # activating would only lead to the same message
        return _blocked(request, account)
    form = NewPasswordForm(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            tokens.redeem(token, TokenPurpose.ACTIVATION, account)
        except InvalidToken as error:
            return _invalid_link(request, account, error, TokenPurpose.ACTIVATION)
        try:
            user = lifecycle.activate(
                user, form.cleaned_data["new_password1"], ip=client_ip(request)
            )
        except LifecycleError:  # the contact was deleted meanwhile
            return _blocked(request, account)
        if not user.is_active:
            return _blocked(request, account)
        _sign_in(request, user)
        return redirect("portal-home", slug=slug)
    return render(
        request,
        "portal/set_password.html",
        {"account": account, "form": form, "person": user, "activating": True},
    )


@require_http_methods(PAGE_METHODS)
def reset(request, slug, token):
    found, account, failure = _token_page(request, slug, token, TokenPurpose.PASSWORD_RESET)
    if failure:
        return failure
    user = found.user
    form = NewPasswordForm(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            tokens.redeem(token, TokenPurpose.PASSWORD_RESET, account)
        except InvalidToken as error:
            return _invalid_link(request, account, error, TokenPurpose.PASSWORD_RESET)
        try:
            user = lifecycle.set_new_password(
                user, form.cleaned_data["new_password1"], ip=client_ip(request)
            )
        except LifecycleError:  # disabled, or the contact deleted, since the link was sent
            return _blocked(request, account)
        _sign_in(request, user)
        return redirect("portal-home", slug=slug)
    return render(
        request,
        "portal/set_password.html",
        {"account": account, "form": form, "person": user, "activating": False},
    )


@require_http_methods(PAGE_METHODS)
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
            return _invalid_link(request, account, error, purpose)
        if not used.user.is_active:
            method = "magic_link" if purpose == TokenPurpose.MAGIC_LINK else "link"
            attempt = _attempt(method, used.user.email)
            sign_in_audit.refused(
                request, **attempt, user=used.user, reason=email_requests.why_blocked(used.user)
            )
            return _blocked(request, account)
        _sign_in(request, used.user)
        target = f"?section={used.target}" if used.target in SECTIONS else ""
        return redirect(f"{account.portal_path()}{target}")
    return render(request, "portal/link_confirm.html", {"account": account, "person": found.user})


@require_http_methods(PAGE_METHODS)
def confirm_email(request, slug, token):
    """The link sent to a new sign-in email that waits for confirmation (changed in the CRM for
    a user with a password: accounts.email_changes). The link proves the new mailbox; the
    current password proves the person. Without it, whoever changed the contact's address in
    the CRM (a contact-sync token, say) to a mailbox of their own would confirm it there and
    then reset the password."""
    found, account, failure = _token_page(request, slug, token, TokenPurpose.EMAIL_CHANGE)
    if failure:
        return failure
    context = {"account": account, "person": found.user, "new_email": found.user.pending_email}
    if request.method == "POST":
        error, status = _current_password_error(request, account, found.user)
        if error:
            return render(
                request, "portal/confirm_email.html", {**context, "error": error}, status=status
            )
        try:
            user = email_changes.confirm(token, account, ip=client_ip(request))
        except InvalidToken as error:
            return _invalid_link(request, account, error, TokenPurpose.EMAIL_CHANGE)
        except LifecycleError as error:
            return render(
                request, "portal/email_confirmed.html", {**context, "error": error}, status=409
            )
        return render(request, "portal/email_confirmed.html", {**context, "new_email": user.email})
    return render(request, "portal/confirm_email.html", context)


def _current_password_error(request, account, person):
    """(message, status) when the form's password is not `person`'s current one, through the
    sign-in throttle as a sign-in is; ("", 200) when it is."""
    password = request.POST.get("password", "")
    if not password:
        return "Enter your current password: it shows the change is yours.", 400
    try:
        user = PortalBackend().authenticate(
            request, portal_account=account, email=person.email, password=password
        )
    except sign_in_guard.LockedOut as locked_out:
        return str(locked_out), 429
    if user is None or user.pk != person.pk:
        return (
            f"That is not the current password of {person.email}. Forgot it? Reset it from "
            f"{person.email} first, then open this link again.",
            400,
        )
    return "", 200
