"""A mail server's permanent refusal of a recipient (5xx to RCPT) is a bounce: the email is not
retried, the user's address is marked undeliverable on their row and page with an audit event,
and a changed email clears it. A 4xx, or a refused message, retries as before."""

import smtplib
from unittest import mock

import pytest
from django.urls import reverse

from accounts import lifecycle
from accounts.models import AuditEvent, OutboxEmail, User
from tests.factories import PortalUserFactory

NO_SUCH_MAILBOX = smtplib.SMTPRecipientsRefused(
    {"x": (550, b"5.1.1 <ada@acme.example>: Recipient address rejected: User unknown")}
)
MAILBOX_FULL = smtplib.SMTPRecipientsRefused({"x": (452, b"4.2.2 Mailbox full")})
CONTENT_REFUSED = smtplib.SMTPDataError(554, b"5.7.1 Message rejected as spam")


@pytest.fixture
def ada(account, partner_role):
    return PortalUserFactory(portal_account=account, role=partner_role, email="ada@acme.example")


def send_login_email(user, by, error, capture):
    with (
        mock.patch("django.core.mail.EmailMessage.send", side_effect=error),
        capture(execute=True),
    ):
        lifecycle.send_login_email(user, by=by)
    return OutboxEmail.objects.filter(user=user).latest("pk")


def test_a_permanent_refusal_fails_the_email_and_marks_the_address(
    ada, mssp_admin, admin_client, account, django_capture_on_commit_callbacks
):
    row = send_login_email(ada, mssp_admin, NO_SUCH_MAILBOX, django_capture_on_commit_callbacks)
    assert row.status == OutboxEmail.Status.FAILED
    assert row.attempts == 1  # not tried again
    ada.refresh_from_db()
    assert ada.email_undeliverable
    assert ada.undeliverable_reason.startswith("550 5.1.1")
    event = AuditEvent.objects.get(action="email_bounced", subject_user=ada)
    assert "ada@acme.example" in event.detail
    listed = admin_client.get(reverse("users", args=[account.slug])).content.decode()
    assert "Email bounced" in listed
    page = admin_client.get(reverse("user", args=[account.slug, ada.pk])).content.decode()
    assert "The mail server refused this address" in page


@pytest.mark.parametrize("error", [MAILBOX_FULL, CONTENT_REFUSED])
def test_a_temporary_refusal_or_a_refused_message_retries_and_marks_nothing(
    ada, mssp_admin, error, django_capture_on_commit_callbacks
):
    row = send_login_email(ada, mssp_admin, error, django_capture_on_commit_callbacks)
    assert row.status == OutboxEmail.Status.PENDING
    ada.refresh_from_db()
    assert not ada.email_undeliverable
    assert not AuditEvent.objects.filter(action="email_bounced").exists()


def test_a_new_address_clears_the_mark(ada, mssp_admin, django_capture_on_commit_callbacks):
    send_login_email(ada, mssp_admin, NO_SUCH_MAILBOX, django_capture_on_commit_callbacks)
    User.objects.filter(pk=ada.pk).update(email="ada.larsen@acme.example")
    ada.refresh_from_db()
    assert not ada.email_undeliverable


def test_a_bounce_for_an_address_the_user_no_longer_has_marks_nothing(
    ada, mssp_admin, django_capture_on_commit_callbacks
):
    with mock.patch("django.core.mail.EmailMessage.send", side_effect=NO_SUCH_MAILBOX):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            lifecycle.send_login_email(ada, by=mssp_admin)
        User.objects.filter(pk=ada.pk).update(email="new@acme.example")
        for callback in callbacks:
            callback()
    ada.refresh_from_db()
    assert ada.undeliverable_email is None


def test_a_bounce_is_a_webhook_event_with_the_refused_address(
    ada, mssp_admin, account, django_capture_on_commit_callbacks
):
    from webhooks.models import Delivery, Endpoint

    Endpoint.objects.create(
        portal_account=account, url="https://crm.example.com/hooks", events=["user.email_bounced"]
    )
    send_login_email(ada, mssp_admin, NO_SUCH_MAILBOX, django_capture_on_commit_callbacks)
    (delivery,) = Delivery.objects.all()
    assert delivery.payload["type"] == "user.email_bounced"
    assert delivery.payload["data"]["user"]["id"] == ada.pk
    assert delivery.payload["data"]["bounce"]["email"] == "ada@acme.example"
    assert delivery.payload["data"]["bounce"]["reply"].startswith("550 5.1.1")
