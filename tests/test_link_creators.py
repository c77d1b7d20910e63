"""Who a link sent by email is credited to on the Sign-in links page: the worker mints the token
when it sends the email, but the page names the person who caused the email, as the audit log
does (an admin's reset, or the person's own request from the portal)."""

import re

import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import AuditEvent, LoginToken, OutboxEmail, TokenPurpose
from tests.factories import PortalUserFactory


@pytest.fixture(autouse=True)
def _portal_base_url(settings):
    settings.PORTAL_BASE_URL = "http://127.0.0.1:8000"


@pytest.fixture
def pia(account, partner_role):
    return PortalUserFactory(
        portal_account=account, role=partner_role, name="Pia Portal", email="pia@acme.example"
    )


def by_cells(page):
    """{link label: its 'By' cell} of the Sign-in links table."""
    rows = re.findall(r'<tr id="token-\d+">(.*?)</tr>', page, re.S)
    return {
        re.search(r"<td>(.*?)</td>", row).group(1): re.findall(r"<td>(.*?)</td>", row, re.S)[1]
        for row in rows
    }


def links_page(client, user):
    url = reverse("user-links", args=[user.portal_account.slug, user.pk])
    return client.get(url).content.decode()


def test_an_admins_password_reset_is_credited_to_the_admin(
    admin_client, mssp_admin, pia, django_capture_on_commit_callbacks
):
    url = reverse("user-action", args=[pia.portal_account.slug, pia.pk, "reset-password"])
    with django_capture_on_commit_callbacks(execute=True):
        assert admin_client.post(url).status_code == 302
    assert len(mail.outbox) == 1  # the worker sent it, and minted the link then

    cell = by_cells(links_page(admin_client, pia))["Password reset"]
    assert "Mia Admin" in cell
    assert "system" not in cell
    token = LoginToken.objects.get(user=pia, purpose=TokenPurpose.PASSWORD_RESET)
    assert token.created_by == mssp_admin
    # The same person the audit log names.
    assert AuditEvent.objects.get(action="reset_password", subject_user=pia).actor == mssp_admin


def test_a_login_email_sent_from_the_console_names_who_sent_it(
    technician_client, pia, django_capture_on_commit_callbacks
):
    url = reverse("user-action", args=[pia.portal_account.slug, pia.pk, "send-login-email"])
    with django_capture_on_commit_callbacks(execute=True):
        assert technician_client.post(url).status_code == 302
    assert "Theo Tech" in by_cells(links_page(technician_client, pia))["Login email"]


def test_a_link_the_person_asked_for_says_they_did(
    client, admin_client, pia, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/p/acme/login/email-link/", {"email": pia.email})
    assert len(mail.outbox) == 1

    cell = by_cells(links_page(admin_client, pia))["Login email"]
    assert "Pia Portal" in cell
    assert "asked for it" in cell
    assert "system" not in cell


def test_an_email_with_no_cause_of_its_own_credits_nobody(admin_client, pia, customer_role):
    """A row queued without a fresh audit event of its kind is not pinned on whoever acted last
    on the user (here an admin changed their role just before)."""
    from accounts.models import EmailKind
    from mail import outbox

    url = reverse("user-action", args=[pia.portal_account.slug, pia.pk, "change-role"])
    assert admin_client.post(url, {"role": customer_role.pk}).status_code == 302
    row = outbox.queue_email(pia, EmailKind.PASSWORD_RESET)
    assert OutboxEmail.objects.get(pk=row.pk).queued_by is None
