"""The batch sender's emails (mail/composer.py: one rendering per account and kind, filled in per
row, written as bytes for SMTP) are the emails of mail.emails.build_message, for every kind, in
the default wording and in an account's own, with names that HTML escaping or the mail headers
change."""

import email
import email.policy

import pytest
from django.core.mail.message import sanitize_address

from accounts import tokens
from accounts.models import EmailKind, OutboxEmail
from mail import composer as composer_module
from mail.composer import Composer
from mail.custom_emails import EDITABLE
from mail.emails import LINKS, build_message
from mail.models import BrandLogo, CustomEmail, SenderIdentity
from tests.factories import PortalUserFactory

CONTEXTS = {
    EmailKind.INVITATION: {"invited_by": "Theo <Tech>"},
    EmailKind.LOGIN_LINK: {"target": "/p/acme/documents/?a=1&b=2"},
    EmailKind.EMAIL_CHANGE_CONFIRM: {"target": "email:0123456789abcdef"},
    EmailKind.EMAIL_CHANGE_NOTICE: {"new_email": "new@example.com"},
    EmailKind.ACCESS_BLOCKED: {"asked_for": "code"},
    EmailKind.INACTIVITY_WARNING: {
        "inactive_days": 90,
        "disable_on": "January 5, 2027",
        "sign_in_url": "https://portal.example.com/p/acme/login/",
    },
}
# The first is rendered as it is (no placeholder can stand for it); the group's template is made
# from the next two and fills in the rest.
NAMES = ["Zoë  Two  Spaces", "Ada Lovelace", 'O\'Brien & <Sons> "Ltd"', "José Müller", "Łukasz"]
OWN_WORDS = {
    "link": ("Hello {name}, from {portal}", "Hi {name}!\n\n.{link}\n\nIt expires in {expires}."),
    "code": ("Your code, {name}", "Hi {name},\r\n\r\nYour code: {code}\r\nFor {expires}."),
    None: ("{portal}: {name}", "Hello {name},\n\nPlease call us."),
}


def _rows(account, kind):
    rows = []
    for n, name in enumerate(NAMES):
        # One address that Django's address rules rewrite (the domain in lower case).
        address = {"email": f"person{n}@Example.COM"} if n == 3 else {}
        user = PortalUserFactory(portal_account=account, name=name, **address)
        rows.append(
            OutboxEmail.objects.create(
                portal_account=account,
                user=user,
                to_email=user.email,
                kind=kind,
                context=CONTEXTS.get(kind, {}),
            )
        )
    rows = OutboxEmail.objects.filter(kind=kind).select_related("user", "portal_account")
    rows = list(rows.order_by("pk"))
    purpose = LINKS[kind][0]
    minted = tokens.issue_for_emails([(row, purpose) for row in rows]) if purpose else {}
    return rows, minted


def _parsed(data):
    message = email.message_from_bytes(data, policy=email.policy.default)
    text, html = message.get_payload()
    return {
        "type": message.get_content_type(),
        "subject": message["Subject"],
        "from": message["From"],
        "reply-to": message["Reply-To"],
        "to": message["To"],
        "message-id": message["Message-ID"],
        "x-outbox-id": message["X-Outbox-Id"],
        "text": (text.get_content_type(), text.get_content()),
        "html": (html.get_content_type(), html.get_content()),
    }


@pytest.fixture(params=["default sender", "own sender and logo"])
def sender_account(request, account):
    if request.param == "own sender and logo":
        BrandLogo.objects.create(
            portal_account=account, png=b"\x89PNG", digest="0123456789abcdef", width=1, height=1
        )
        SenderIdentity.objects.create(
            portal_account=account,
            from_name="Acme Sécurité, Inc.",
            from_email="hello@acme.example",
            reply_to="help@acme.example",
            accent_color="#0f766e",
        )
    return account


# Every kind in the default wording, and each kind an account may word itself in its own.
@pytest.mark.parametrize(
    ("kind", "own_words"),
    [(kind, False) for kind in LINKS] + [(kind, True) for kind in LINKS if kind in EDITABLE],
    ids=lambda value: (
        ("own wording" if value else "default wording") if isinstance(value, bool) else str(value)
    ),
)
def test_the_composed_email_is_build_messages_email(sender_account, kind, own_words):
    if own_words:
        subject, body = OWN_WORDS[EDITABLE[kind][0]]
        CustomEmail.objects.create(
            portal_account=sender_account, kind=kind, subject=subject, body=body
        )
    rows, minted = _rows(sender_account, kind)
    composer = Composer()
    logo = composer.sender(rows[0]).logo_url

    for row in rows:
        envelope_from, recipients, data, subject = composer.mime(row, minted.get(row.pk))
        expected = build_message(row, minted.get(row.pk))

        assert _parsed(data) == _parsed(expected.message().as_bytes(linesep="\r\n"))
        assert subject == expected.subject
        assert envelope_from == sanitize_address(expected.from_email, "utf-8")
        assert recipients == [sanitize_address(row.to_email, "utf-8")]
        assert b"\n" not in data.replace(b"\r\n", b"")  # SMTP's line ends only
        email_message = composer.email(row, minted.get(row.pk))
        assert (email_message.subject, email_message.body, email_message.alternatives) == (
            expected.subject,
            expected.body,
            expected.alternatives,
        )
        html = _parsed(data)["html"][1]
        assert (logo in html) if logo else ("<img" not in html)
    # Filled in from the group's template, not rendered row by row.
    assert [template is not None for template in composer.templates.values()] == [True]


def test_a_template_that_changes_the_name_is_rendered_per_row(account, monkeypatch):
    content = composer_module.email_content

    def shouting(row, context, custom):
        subject, text, html = content(row, context, custom)
        return subject, text.upper(), html

    monkeypatch.setattr(composer_module, "email_content", shouting)
    rows, minted = _rows(account, EmailKind.LOGIN_LINK)
    composer = Composer()

    texts = [composer.content(row, minted[row.pk])[1] for row in rows]

    assert list(composer.templates.values()) == [None]
    assert texts[1] == f"HELLO {rows[1].user.name.upper()},\n" + texts[1].split(",\n", 1)[1]
