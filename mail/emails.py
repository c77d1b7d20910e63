"""What each outbox email says. Rendering mints the login token the email carries, so the
secret exists only in the message that leaves. Rendering the same row again gives the same
message: the same link (accounts.tokens.issue_for_email) and the same Message-ID, since a row
may be sent twice (mail/delivery.py)."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from accounts import link_lifetimes, tokens
from accounts.models import EmailKind, TokenPurpose
from accounts.models.access_policy import describe

SUBJECTS = {
    EmailKind.INVITATION: "You're invited to {portal}",
    EmailKind.REINVITATION: "Your invitation to {portal}",
    EmailKind.PASSWORD_RESET: "Reset your {portal} password",
    EmailKind.ACCESS_RESTORED: "Your access to {portal} is restored",
    EmailKind.LOGIN_LINK: "Your sign-in link for {portal}",
    EmailKind.LOGIN_CODE: "Your sign-in code for {portal}",
    EmailKind.EMAIL_CHANGE_CONFIRM: "Confirm your new sign-in email for {portal}",
    EmailKind.EMAIL_CHANGE_NOTICE: "Your sign-in email for {portal} is about to change",
    EmailKind.ACCESS_BLOCKED: "Your account at {portal} may be disabled",
    EmailKind.INVITATION_REMINDER: "Reminder: your invitation to {portal}",
    EmailKind.INACTIVITY_WARNING: "Sign in to keep your access to {portal}",
}

# kind -> (token purpose, portal URL name that redeems it; None: the email carries a code that
# the person types on the page where they asked for it). A notice carries no credential at all.
LINKS = {
    EmailKind.INVITATION: (TokenPurpose.ACTIVATION, "portal-activate"),
    EmailKind.REINVITATION: (TokenPurpose.ACTIVATION, "portal-activate"),
    EmailKind.PASSWORD_RESET: (TokenPurpose.PASSWORD_RESET, "portal-reset"),
    EmailKind.ACCESS_RESTORED: (TokenPurpose.LOGIN_EMAIL, "portal-link"),
    EmailKind.LOGIN_LINK: (TokenPurpose.LOGIN_EMAIL, "portal-link"),
    EmailKind.LOGIN_CODE: (TokenPurpose.LOGIN_CODE, None),
    EmailKind.EMAIL_CHANGE_CONFIRM: (TokenPurpose.EMAIL_CHANGE, "portal-confirm-email"),
    EmailKind.EMAIL_CHANGE_NOTICE: (None, None),
    EmailKind.ACCESS_BLOCKED: (None, None),
    EmailKind.INVITATION_REMINDER: (TokenPurpose.ACTIVATION, "portal-activate"),
    # The warning carries no credential: the person signs in as they always do.
    EmailKind.INACTIVITY_WARNING: (None, None),
}


def _expires_in(account, purpose):
    if purpose is None:
        return ""
    return describe(link_lifetimes.lifetime(account.pk, purpose))


def _credential(row, purpose, url_name, minted=None):
    if purpose is None:
        return {}
    if url_name is None:
        return {"code": minted or tokens.issue_code_for_email(row)}
    secret = minted or tokens.issue_for_email(row, purpose)
    path = reverse(url_name, kwargs={"slug": row.portal_account.slug, "token": secret})
    return {"link": settings.PORTAL_BASE_URL + path}


def message_id(row):
    """The same on every attempt at sending the row: a mail client that receives the email
    twice can tell it is one email."""
    domain = urlsplit(settings.PORTAL_BASE_URL).hostname or "localhost"
    return f"<outbox-{row.pk}.{int(row.created_at.timestamp())}@{domain}>"


def build_message(row, minted=None):
    """An EmailMultiAlternatives for an outbox row (mints a token: call inside the send
    transaction so that a failed send leaves no live token behind). `minted`: the secret or code
    that accounts.tokens.issue_for_emails already minted for the row (the batch sender)."""
    user = row.user
    account = row.portal_account
    purpose, url_name = LINKS[row.kind]
    target = row.context.get("target", "")
    context = {
        "user": user,
        "portal_name": account.name,
        "expires_in": _expires_in(account, purpose),
        "target": target,
        **row.context,
        **_credential(row, purpose, url_name, minted),
    }
    # The account name is refused with line breaks at input; one saved before that rule must not
    # make the mail library refuse every email of the account (BadHeaderError) for ever.
    subject = " ".join(SUBJECTS[row.kind].format(portal=account.name).split())
    text = render_to_string(f"emails/{row.kind}.txt", context)
    html = render_to_string(f"emails/{row.kind}.html", context)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [row.to_email])
    message.attach_alternative(html, "text/html")
    message.extra_headers["X-Outbox-Id"] = str(row.pk)
    message.extra_headers["Message-ID"] = message_id(row)
    return message
