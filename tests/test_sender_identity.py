"""A portal account's email sender: MSSP admins set its name, address and Reply-To; every email
of that account says so (the per-row and the batch sender alike), other accounts' emails keep
the default; the page shows the DNS records to publish, as text."""

import pytest
from django.core import mail
from django.urls import reverse

from accounts import lifecycle
from accounts.models import AuditEvent
from mail.models import SenderIdentity
from tests.conftest import _client_for
from tests.factories import PortalUserFactory


def sender_url(account):
    return reverse("sender-identity", args=[account.slug])


def save(client, account, **fields):
    data = {"from_name": "", "from_email": "", "reply_to": "", **fields}
    return client.post(sender_url(account), data)


def test_an_mssp_admin_sets_the_sender_and_it_is_audited(admin_client, account):
    answer = save(
        admin_client,
        account,
        from_name="Acme, Partner Portal",
        from_email="portal@acme.example",
        reply_to="help@acme.example",
    )
    assert answer.status_code == 302
    identity = SenderIdentity.objects.get(portal_account=account)
    assert identity.from_email == "portal@acme.example"
    event = AuditEvent.objects.get(action="change_sender", portal_account=account)
    assert event.after["reply_to"] == "help@acme.example"
    page = admin_client.get(sender_url(account)).content.decode()
    assert "From: &quot;Acme, Partner Portal&quot; &lt;portal@acme.example&gt;" in page
    assert "v=spf1 include:" in page
    assert "portaladmin._domainkey.acme.example" in page


def test_saving_the_same_sender_again_records_nothing(admin_client, account):
    save(admin_client, account, from_email="portal@acme.example")
    save(admin_client, account, from_email="portal@acme.example")
    assert AuditEvent.objects.filter(action="change_sender").count() == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"from_name": "Acme\r\nBcc: victim@example.com"},
        {"from_name": "x" * 101},
        {"from_email": "not an address"},
        {"reply_to": "a@b.example\nBcc: c@d.example"},
        {"from_name": "nul\x00byte"},
    ],
)
def test_a_bad_sender_is_a_form_error_and_changes_nothing(admin_client, account, fields):
    answer = save(admin_client, account, **fields)
    assert answer.status_code == 400
    assert not SenderIdentity.objects.filter(portal_account=account).exists()


def test_only_mssp_admins_may_set_it(technician_client, account_admin_client, account):
    for client in (technician_client, account_admin_client):
        assert save(client, account, from_email="x@evil.example").status_code == 403
    assert not SenderIdentity.objects.exists()


def test_another_tenants_page_is_refused_to_an_account_admin(account, other_admin):
    assert _client_for(other_admin).get(sender_url(account)).status_code in (403, 404)


def test_the_accounts_emails_come_from_its_sender_and_others_keep_the_default(
    account, other_account, partner_role, mssp_admin, settings, django_capture_on_commit_callbacks
):
    SenderIdentity.objects.create(
        portal_account=account,
        from_name="Acme Portal",
        from_email="portal@acme.example",
        reply_to="help@acme.example",
    )
    ada = PortalUserFactory(portal_account=account, role=partner_role)
    other = PortalUserFactory(portal_account=other_account)
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.send_login_email(ada, by=mssp_admin)
        lifecycle.send_login_email(other, by=mssp_admin)
    by_recipient = {message.to[0]: message for message in mail.outbox}
    assert by_recipient[ada.email].from_email == "Acme Portal <portal@acme.example>"
    assert by_recipient[ada.email].reply_to == ["help@acme.example"]
    assert by_recipient[other.email].from_email == settings.DEFAULT_FROM_EMAIL
    assert by_recipient[other.email].reply_to == []


def test_an_empty_name_keeps_the_default_name_with_the_accounts_address(
    account, partner_role, mssp_admin, settings, django_capture_on_commit_callbacks
):
    settings.DEFAULT_FROM_EMAIL = "Our MSSP <no-reply@mssp.example>"
    SenderIdentity.objects.create(portal_account=account, from_email="portal@acme.example")
    ada = PortalUserFactory(portal_account=account, role=partner_role)
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.send_login_email(ada, by=mssp_admin)
    assert mail.outbox[-1].from_email == "Our MSSP <portal@acme.example>"


def test_a_brand_colour_too_light_for_white_text_is_refused(admin_client, account):
    answer = save(admin_client, account, accent_color="#ffd84d")
    assert answer.status_code == 400
    assert "Too light for white text" in answer.content.decode()
    assert save(admin_client, account, accent_color="javascript:x").status_code == 400
    assert not SenderIdentity.objects.exists()


def test_the_brand_colour_reaches_the_emails_and_the_portal_pages(
    admin_client, account, partner_role, mssp_admin, client, django_capture_on_commit_callbacks
):
    assert save(admin_client, account, accent_color="#0F766E").status_code == 302
    css = client.get(reverse("portal-brand-css", args=[account.slug]))
    assert css["Content-Type"].startswith("text/css")
    assert "--accent: #0f766e;" in css.content.decode()
    login_page = client.get(reverse("portal-login", args=[account.slug])).content.decode()
    assert reverse("portal-brand-css", args=[account.slug]) in login_page
    ada = PortalUserFactory(portal_account=account, role=partner_role)
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.send_login_email(ada, by=mssp_admin)
    assert "background:#0f766e" in mail.outbox[-1].alternatives[0][0]


def test_the_brand_stylesheet_of_an_unknown_portal_is_404(client, db):
    assert client.get(reverse("portal-brand-css", args=["no-such-portal"])).status_code == 404
