"""What each outbox email says. Rendering mints the login token the email carries, so the
secret exists only in the message that leaves. Rendering the same row again gives the same
message: the same link (accounts.tokens.issue_for_email) and the same Message-ID, since a row
may be sent twice (mail/delivery.py)."""

import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from accounts import link_lifetimes, tokens
from accounts.models import EmailKind, TokenPurpose
from accounts.models.access_policy import describe
from mail import custom_emails
from mail.custom_emails import custom_email
from mail.sender_identity import sender_of

log = logging.getLogger(__name__)

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


def expires_in(account, purpose):
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


def _in_own_words(custom, context):
    """(subject, text, html) of an account's own wording, in the console's email layout; None
    when it cannot be filled in."""
    values = {
        "name": context["user"].name,
        "portal": context["portal_name"],
        "link": context.get("link", ""),
        "code": context.get("code", ""),
        "expires": context["expires_in"],
    }
    try:
        subject, text, paragraphs = custom_emails.render(
            custom.subject, custom.body, values, context["accent"]
        )
    except (KeyError, IndexError, ValueError):
        # Saved past the form's checks (by hand in the database): the default wording goes
        # out rather than no email at all.
        log.warning("The custom %s email of account %s is unusable", custom.kind, custom.pk)
        return None
    html = render_to_string("emails/custom.html", {**context, "paragraphs": paragraphs})
    return subject, text, html


def message_id(row):
    """The same on every attempt at sending the row: a mail client that receives the email
    twice can tell it is one email."""
    domain = urlsplit(settings.PORTAL_BASE_URL).hostname or "localhost"
    return f"<outbox-{row.pk}.{int(row.created_at.timestamp())}@{domain}>"


def email_context(row, sender, minted=None):
    """What the templates of the row's email see. Both ways of writing an email start here (this
    module's build_message, one at a time, and mail.composer, a batch's emails from one rendering
    per account and kind), so whatever a template gains is in both: `sender` is the account's
    mail.sender_identity.Sender (its colour, and anything else of the account's brand)."""
    account = row.portal_account
    purpose, url_name = LINKS[row.kind]
    return {
        "user": row.user,
        "portal_name": account.name,
        "expires_in": expires_in(account, purpose),
        "target": row.context.get("target", ""),
        **row.context,
        **_credential(row, purpose, url_name, minted),
        "accent": sender.accent,
        "logo_url": sender.logo_url,
    }


def email_content(row, context, custom):
    """(subject, text, html) of the row's email: the account's own wording `custom`
    (mail.custom_emails) when it has one that can be filled in, the default otherwise."""
    own_words = _in_own_words(custom, context) if custom is not None else None
    if own_words is not None:
        return own_words
    # The account name is refused with line breaks at input; one saved before that rule must
    # not make the mail library refuse every email of the account (BadHeaderError) for ever.
    subject = " ".join(SUBJECTS[row.kind].format(portal=row.portal_account.name).split())
    text = render_to_string(f"emails/{row.kind}.txt", context)
    html = render_to_string(f"emails/{row.kind}.html", context)
    return subject, text, html


def as_email(row, sender, subject, text, html):
    """The EmailMultiAlternatives of a row's email (mail.composer writes the same message as
    bytes for an SMTP session)."""
    message = EmailMultiAlternatives(
        subject, text, sender.from_header, [row.to_email], reply_to=sender.reply_to
    )
    message.attach_alternative(html, "text/html")
    message.extra_headers["X-Outbox-Id"] = str(row.pk)
    message.extra_headers["Message-ID"] = message_id(row)
    return message


def build_message(row, minted=None, sender=None, customs=None):
    """An EmailMultiAlternatives for an outbox row (mints a token: call inside the send
    transaction so that a failed send leaves no live token behind). `minted`: the secret or code
    that accounts.tokens.issue_for_emails already minted for the row (the batch sender);
    `sender`: the account's mail.sender_identity.Sender, if the caller already has it;
    `customs`: a batch's cache of the accounts' own wordings (mail.custom_emails)."""
    sender = sender or sender_of(row.portal_account)
    context = email_context(row, sender, minted)
    custom = custom_email(row.portal_account_id, row.kind, customs)
    return as_email(row, sender, *email_content(row, context, custom))
