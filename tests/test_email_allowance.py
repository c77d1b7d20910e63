"""Emails that others ask Portal Admin to send one address are limited per hour (accounts/
email_allowance.py): a console admin, an API token or a CRM sync in a loop cannot mail-bomb a
person. The user's own requests on the portal are not counted, so a stranger cannot use up the
allowance, and a change that fails uses none of it."""

import json

import pytest
from django.db import transaction
from django.urls import reverse

from accounts import lifecycle
from accounts.errors import TooManyEmails
from accounts.models import AuditEvent, EmailKind, OutboxEmail, User, UserState
from tests.conftest import api_client_for
from tests.factories import ContactFactory, PortalUserFactory

LIMIT = 3
# The allowance is counted when the change commits.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _small_allowance(settings):
    settings.EMAILS_ASKED_FOR_PER_ADDRESS_PER_HOUR = LIMIT


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
    assert emails_to(pia).count() == LIMIT


def test_deleting_and_inviting_again_does_not_start_the_count_afresh(
    account, partner_role, technician
):
    contact = ContactFactory(portal_account=account, email="ada@example.com", name="Ada")
    for _ in range(LIMIT):
        user = lifecycle.invite(account, role=partner_role, contact=contact, by=technician)
        lifecycle.delete(user, by=technician)

    with pytest.raises(TooManyEmails):
        lifecycle.invite(account, role=partner_role, contact=contact, by=technician)

    assert not User.objects.filter(contact=contact).exists()


def test_a_change_that_fails_uses_none_of_it(pia, technician):
    def reset_in_a_change_that_fails():
        with transaction.atomic():
            lifecycle.reset_password(pia, by=technician)
            raise RuntimeError("the surrounding change failed")

    for _ in range(LIMIT):
        with pytest.raises(RuntimeError):
            reset_in_a_change_that_fails()

    for _ in range(LIMIT):
        lifecycle.reset_password(pia, by=technician)


def test_a_crm_flipping_an_address_gets_no_invitation_past_the_allowance(
    account, partner_role, technician, api_token
):
    contact = ContactFactory(portal_account=account, email="one@example.com", name="Flip")
    user = lifecycle.invite(account, role=partner_role, contact=contact, by=technician)
    client = api_client_for(api_token.secret)
    for n in range(2 * LIMIT + 2):
        email = "two@example.com" if n % 2 == 0 else "one@example.com"
        body = {"contacts": [{"contact_id": contact.contact_id, "name": "Flip", "email": email}]}
        response = client.post(
            reverse("api-sync-upsert", args=[account.slug]),
            json.dumps(body),
            content_type="application/json",
        )
        assert response.status_code == 200  # the CRM's address stands either way

    user.refresh_from_db()
    sent_to = list(
        OutboxEmail.objects.filter(user=user, kind=EmailKind.INVITATION).values_list(
            "to_email", flat=True
        )
    )
    assert sent_to.count("two@example.com") == LIMIT
    assert sent_to.count("one@example.com") == LIMIT  # the first invite counted too
    # The flip past the allowance says so in its audit event; the user then has no invitation
    # on its way, so the flips after it have none to send again.
    held = AuditEvent.objects.filter(subject_user=user, detail__contains="not sent again")
    assert held.count() == 1
    assert "use Reinvite later" in held.get().detail


def test_one_accounts_emails_do_not_use_up_anothers(
    account, other_account, partner_role, technician
):
    pia = PortalUserFactory(portal_account=account, role=partner_role, email="same@example.com")
    twin = PortalUserFactory(portal_account=other_account, email="same@example.com")
    for _ in range(LIMIT):
        lifecycle.send_login_email(pia, by=technician)

    lifecycle.send_login_email(twin, by=technician)

    assert emails_to(twin).count() == 1


def test_a_crm_flipping_an_activated_users_address_mails_neither_past_the_allowance(
    account, pia, api_token
):
    client = api_client_for(api_token.secret)
    old = pia.email
    for n in range(2 * LIMIT):
        email = f"new{n}@example.com"
        body = {"contacts": [{"contact_id": pia.contact.contact_id, "name": "Pia", "email": email}]}
        response = client.post(
            reverse("api-sync-upsert", args=[account.slug]),
            json.dumps(body),
            content_type="application/json",
        )
        assert response.status_code == 200

    notices = OutboxEmail.objects.filter(user=pia, kind=EmailKind.EMAIL_CHANGE_NOTICE, to_email=old)
    assert notices.count() == LIMIT
    pia.refresh_from_db()
    assert (pia.email, pia.pending_email) == (old, f"new{2 * LIMIT - 1}@example.com")
    last = AuditEvent.objects.filter(subject_user=pia).order_by("-pk").first()
    assert "no link was sent" in last.detail
