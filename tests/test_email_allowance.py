"""Emails that others ask Portal Admin to send one user are limited per hour (accounts/
email_allowance.py): a console admin or an API token in a loop cannot mail-bomb a person. The
user's own requests on the portal are not counted, so a stranger cannot use up the allowance."""

import pytest
from django.urls import reverse

from accounts import lifecycle
from accounts.errors import TooManyEmails
from accounts.models import AuditEvent, EmailKind, OutboxEmail, UserState
from tests.conftest import api_client_for
from tests.factories import PortalUserFactory

LIMIT = 3


@pytest.fixture(autouse=True)
def _small_allowance(settings):
    settings.EMAILS_ASKED_FOR_PER_USER_PER_HOUR = LIMIT


@pytest.fixture
def pia(account, partner_role):
    return PortalUserFactory(
        portal_account=account, role=partner_role, state=UserState.ENABLED, name="Pia Portal"
    )


def emails_to(user):
    return OutboxEmail.objects.filter(user=user).exclude(status=OutboxEmail.Status.CANCELLED)


def test_an_admin_may_ask_for_the_allowance_and_then_is_refused_changing_nothing(pia, technician):
    for _ in range(LIMIT):
        lifecycle.reset_password(pia, by=technician)
    sent, events = OutboxEmail.objects.filter(user=pia).count(), AuditEvent.objects.count()

    with pytest.raises(TooManyEmails, match="Pia Portal has already been sent 3 emails"):
        lifecycle.send_login_email(pia, by=technician)

    assert OutboxEmail.objects.filter(user=pia).count() == sent
    assert AuditEvent.objects.count() == events


def test_the_allowance_is_per_recipient(account, partner_role, pia, technician):
    other = PortalUserFactory(portal_account=account, role=partner_role, state=UserState.ENABLED)
    for _ in range(LIMIT):
        lifecycle.send_login_email(pia, by=technician)

    lifecycle.send_login_email(other, by=technician)

    assert emails_to(other).count() == 1


def test_the_users_own_requests_do_not_use_it_up(pia, technician):
    for _ in range(LIMIT * 2):
        lifecycle.send_login_email(pia, by=pia)  # what the portal's "email me a link" does

    lifecycle.reset_password(pia, by=technician)

    assert emails_to(pia).filter(kind=EmailKind.PASSWORD_RESET).count() == 1


def test_enabling_again_and_again_is_counted_too(pia, technician):
    for _ in range(LIMIT):
        lifecycle.disable(pia, by=technician)
        lifecycle.enable(pia, by=technician)
    lifecycle.disable(pia, by=technician)

    with pytest.raises(TooManyEmails):
        lifecycle.enable(pia, by=technician)

    pia.refresh_from_db()
    assert pia.state == UserState.DISABLED


def test_the_console_says_why_and_sends_nothing(technician_client, account, pia):
    url = reverse("user-action", args=[account.slug, pia.pk, "reset-password"])
    for _ in range(LIMIT):
        assert technician_client.post(url).status_code in (200, 302)

    response = technician_client.post(url)

    assert response.status_code == 409
    assert "has already been sent 3 emails" in response.content.decode()
    assert OutboxEmail.objects.filter(user=pia).count() == LIMIT


def test_the_api_answers_429_with_retry_after(api_token, pia):
    client = api_client_for(api_token.secret)
    url = reverse(
        "api-portal-user-send-login-email",
        kwargs={"slug": pia.portal_account.slug, "contact_ref": pia.contact.contact_id},
    )
    for _ in range(LIMIT):
        assert client.post(url, {}, content_type="application/json").status_code == 202

    response = client.post(url, {}, content_type="application/json")

    assert response.status_code == 429
    assert response["Retry-After"] == "3600"
    assert "within the hour" in response.json()["error"]
    assert emails_to(pia).count() == 1  # each new login email replaced the pending one
