"""A portal account's own wording of its emails. Placeholders are Python format fields with a
fixed set of names ({name}, {portal}, {link}, {code}, {expires}) and nothing else: no
attribute, index, conversion or format spec, so a tenant's text can print these five values
and reach no other data. A link or a code is required where the email exists to carry one."""

from string import Formatter

from django.utils.html import escape
from django.utils.safestring import mark_safe

from accounts.models import EmailKind
from mail.models import CustomEmail

NAMES = {
    "name": "the user's name",
    "portal": "the portal's name",
    "link": "the link the email carries",
    "code": "the sign-in code",
    "expires": "how long the link or code works, e.g. “3 days”",
}

# kind -> (what the email must carry: "link", "code" or None, its default subject and body)
EDITABLE = {
    EmailKind.INVITATION: (
        "link",
        "You're invited to {portal}",
        "Hello {name},\n\nYou have been invited to {portal}. Set your password here:\n{link}\n\n"
        "This link works once and expires in {expires}.",
    ),
    EmailKind.REINVITATION: (
        "link",
        "Your invitation to {portal}",
        "Hello {name},\n\nHere is a new invitation to {portal}. Set your password here:\n{link}"
        "\n\nThis link works once and expires in {expires}.",
    ),
    EmailKind.INVITATION_REMINDER: (
        "link",
        "Reminder: your invitation to {portal}",
        "Hello {name},\n\nYou were invited to {portal} and have not activated your account yet. "
        "Choose a password to activate it:\n{link}\n\nThis link works once and expires in "
        "{expires}. Any earlier invitation link no longer works.",
    ),
    EmailKind.LOGIN_LINK: (
        "link",
        "Your sign-in link for {portal}",
        "Hello {name},\n\nSign in to {portal} with this link:\n{link}\n\n"
        "It works once and expires in {expires}.",
    ),
    EmailKind.LOGIN_CODE: (
        "code",
        "Your sign-in code for {portal}",
        "Hello {name},\n\nYour sign-in code for {portal} is {code}\n\n"
        "It works once and expires in {expires}.",
    ),
    EmailKind.PASSWORD_RESET: (
        "link",
        "Reset your {portal} password",
        "Hello {name},\n\nChoose a new password for {portal} here:\n{link}\n\n"
        "This link works once and expires in {expires}.",
    ),
    EmailKind.ACCESS_BLOCKED: (
        None,
        "Your account at {portal} may be disabled",
        "Hello {name},\n\nYour account may be temporarily disabled, please contact the "
        "administrator.",
    ),
}
SUBJECT_NAMES = {"name", "portal"}


def placeholders(text):
    """The placeholder names in `text`; ValueError with a message for a person otherwise."""
    if "{{" in text or "{%" in text:
        raise ValueError("Write placeholders with single braces, e.g. {name}.")
    found = set()
    try:
        parsed = list(Formatter().parse(text))
    except ValueError:
        raise ValueError("A brace is not closed: write placeholders as {name}.") from None
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in NAMES or spec or conversion:
            raise ValueError(
                f"{{{field}}} is not a placeholder. Use {', '.join(f'{{{n}}}' for n in NAMES)}."
            )
        found.add(field)
    return found


def problems(kind, subject, body):
    """{"subject": message, "body": message} for what is wrong; empty when it can be saved."""
    carries = EDITABLE[kind][0]
    errors = {}
    try:
        unusable = placeholders(subject) - SUBJECT_NAMES
        if unusable:
            errors["subject"] = "The subject can use only {name} and {portal}."
    except ValueError as error:
        errors["subject"] = str(error)
    try:
        used = placeholders(body)
        offered = {"name", "portal"} | ({carries, "expires"} if carries else set())
        if used - offered:
            extra = ", ".join(sorted(f"{{{n}}}" for n in used - offered))
            errors["body"] = f"This email has no {extra} to show: remove it."
        elif carries and carries not in used:
            errors["body"] = f"The body must include {{{carries}}}: the email exists to carry it."
    except ValueError as error:
        errors["body"] = str(error)
    return errors


def custom_email(account_id, kind, cache=None):
    """The account's own wording of `kind`, or None (one query, or none with a batch's cache)."""
    key = (account_id, kind)
    if cache is not None and key in cache:
        return cache[key]
    found = None
    if kind in EDITABLE:
        found = CustomEmail.objects.filter(portal_account_id=account_id, kind=kind).first()
    if cache is not None:
        cache[key] = found
    return found


def render(subject, body, values, accent="#1d4ed8"):
    """(subject, text, the HTML paragraphs) with the values filled in. `values` has every name
    of NAMES ("" where the email has none)."""
    subject = " ".join(subject.format_map(values).split())
    text = body.format_map(values)
    paragraphs = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        html = escape(block.strip()).replace("\n", "<br>")
        if values.get("link"):
            link = escape(values["link"])
            html = html.replace(link, f'<a href="{link}" style="color:{accent};">{link}</a>')
        if html:
            paragraphs.append(mark_safe(html))  # noqa: S308 - escaped above
    return subject, text, paragraphs
