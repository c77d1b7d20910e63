"""A portal account's own wording of its emails: named placeholders only, a link or a code
where the email carries one, a preview before saving, audited saves and resets, and every
email of the account (and only of that account) in that wording."""

import pytest
from django.core import mail
from django.urls import reverse

from accounts import lifecycle
from accounts.models import AuditEvent, EmailKind
from mail.models import CustomEmail
from tests.conftest import _client_for
from tests.factories import PortalUserFactory

LOGIN = EmailKind.LOGIN_LINK
BODY = "Hi {name}!\n\nYour way into {portal}: {link}\n\nGood for {expires}."


def edit_url(account, kind=LOGIN):
    return reverse("custom-email", args=[account.slug, kind])


def post(client, account, action="save", kind=LOGIN, subject="Come in, {name}", body=BODY):
    return client.post(
        edit_url(account, kind), {"subject": subject, "body": body, "action": action}
    )


def test_the_list_shows_every_editable_email_and_the_editor_starts_from_the_default(
    admin_client, account
):
    listed = admin_client.get(reverse("custom-emails", args=[account.slug])).content.decode()
    assert "Login link" in listed
    assert "One-time code" in listed
    editor = admin_client.get(edit_url(account)).content.decode()
    assert "Sign in to {portal} with this link:" in editor
    assert "Sign in to " + account.name in editor  # the preview, filled in


def test_preview_changes_nothing_and_save_is_audited(admin_client, account):
    previewed = post(admin_client, account, action="preview")
    assert previewed.status_code == 200
    assert "Hi Ada Larsen!" in previewed.content.decode()
    assert not CustomEmail.objects.exists()
    saved = post(admin_client, account)
    assert saved.status_code == 302
    assert CustomEmail.objects.get(portal_account=account, kind=LOGIN).body == BODY
    event = AuditEvent.objects.get(action="change_email_wording", portal_account=account)
    assert event.after["subject"] == "Come in, {name}"
    assert not event.before


@pytest.mark.parametrize(
    ("subject", "body", "message"),
    [
        ("Hi", "Hello {name}, no link here.", "must include {link}"),
        ("Hi", "{user.password} {link}", "is not a placeholder"),
        ("Hi", "{name.__class__} {link}", "is not a placeholder"),
        ("Hi", "{link!r}", "is not a placeholder"),
        ("Hi", "{link:>999999999}", "is not a placeholder"),
        ("Hi", "{{ user.email }} {link}", "single braces"),
        ("Hi", "{% load x %} {link}", "single braces"),
        ("Hi", "Unclosed {link", "not closed"),
        ("Hi", "{code} {link}", "no {code} to show"),
        ("Your link {link}", "{link}", "only {name} and {portal}"),
        ("Hi", "nul \x00 {link}", "Null characters"),
        ("Hi", "x" * 5001, "at most 5000"),
    ],
)
def test_a_wording_that_could_misbehave_is_a_form_error(
    admin_client, account, subject, body, message
):
    answer = post(admin_client, account, subject=subject, body=body)
    assert answer.status_code == 400
    assert message in answer.content.decode().replace("&#x27;", "'")
    assert not CustomEmail.objects.exists()


def test_a_code_email_must_carry_the_code(admin_client, account):
    answer = post(admin_client, account, kind=EmailKind.LOGIN_CODE, body="Hello {name}")
    assert answer.status_code == 400
    assert "must include {code}" in answer.content.decode()


def test_the_accounts_emails_use_its_wording_and_others_the_default(
    admin_client,
    account,
    other_account,
    partner_role,
    mssp_admin,
    django_capture_on_commit_callbacks,
):
    post(admin_client, account)
    ada = PortalUserFactory(portal_account=account, role=partner_role, name="Ada <b>Larsen</b>")
    other = PortalUserFactory(portal_account=other_account)
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.send_login_email(ada, by=mssp_admin)
        lifecycle.send_login_email(other, by=mssp_admin)
    mine = next(m for m in mail.outbox if m.to == [ada.email])
    theirs = next(m for m in mail.outbox if m.to == [other.email])
    assert mine.subject == "Come in, Ada <b>Larsen</b>"
    assert mine.body.startswith("Hi Ada <b>Larsen</b>!")
    assert "/link/" in mine.body
    html = mine.alternatives[0][0]
    assert "Ada &lt;b&gt;Larsen&lt;/b&gt;" in html  # the name is escaped in the HTML part
    assert '<a href="http' in html
    assert theirs.subject.startswith("Your sign-in link for")


def test_reset_goes_back_to_the_default_and_is_audited(admin_client, account):
    post(admin_client, account)
    answer = post(admin_client, account, action="reset")
    assert answer.status_code == 302
    assert not CustomEmail.objects.exists()
    assert AuditEvent.objects.filter(action="reset_email_wording").count() == 1


def test_only_mssp_admins_edit_and_another_kind_is_404(
    technician_client, account_admin_client, admin_client, account
):
    for client in (technician_client, account_admin_client):
        assert post(client, account).status_code == 403
    assert admin_client.get(edit_url(account, "email_change_notice")).status_code == 404
    assert admin_client.get(edit_url(account, "no-such-kind")).status_code == 404


def test_an_unusable_stored_wording_sends_the_default_rather_than_nothing(
    account, partner_role, mssp_admin, django_capture_on_commit_callbacks
):
    CustomEmail.objects.create(portal_account=account, kind=LOGIN, subject="x", body="{nope}")
    ada = PortalUserFactory(portal_account=account, role=partner_role)
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.send_login_email(ada, by=mssp_admin)
    assert mail.outbox[-1].subject.startswith("Your sign-in link for")


def test_another_tenants_admin_cannot_reach_it(account, other_admin):
    assert _client_for(other_admin).get(edit_url(account)).status_code in (403, 404)


def test_send_me_a_test_mails_the_unsaved_wording_to_the_admin_only(
    admin_client, mssp_admin, account, mailoutbox
):
    answer = post(admin_client, account, action="test", subject="Hey {name}")
    assert answer.status_code == 200
    assert f"Test email on its way to {mssp_admin.email}" in answer.content.decode()
    [message] = mailoutbox
    assert message.to == [mssp_admin.email]
    assert message.subject == "[Test] Hey Ada Larsen"
    assert "Your way into Acme Portal: http" in message.body
    assert "example-link" in message.body  # a sample link: no token was minted
    assert "example-link" in message.alternatives[0][0]
    assert not CustomEmail.objects.exists()  # nothing saved


def test_a_bad_wording_is_not_sent_as_a_test(admin_client, account, mailoutbox):
    answer = post(admin_client, account, action="test", body="No link here, {name}")
    assert answer.status_code == 400
    assert not mailoutbox


def test_test_emails_are_limited_per_person(admin_client, account, mailoutbox):
    from mail.sample_emails import PER_HOUR

    for _ in range(PER_HOUR):
        post(admin_client, account, action="test")
    refused = post(admin_client, account, action="test")
    assert "try later" in refused.content.decode()
    assert len(mailoutbox) == PER_HOUR


def test_the_reminder_email_can_be_worded_too(admin_client, account):
    answer = post(
        admin_client,
        account,
        kind=EmailKind.INVITATION_REMINDER,
        subject="Still waiting, {name}",
        body="Come in: {link}",
    )
    assert answer.status_code == 302
    assert CustomEmail.objects.filter(kind=EmailKind.INVITATION_REMINDER).exists()
