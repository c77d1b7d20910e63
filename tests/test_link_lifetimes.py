"""Link lifetimes per portal account: set on the Access policies page within bounds, used by
every new link (invitation, login email, magic link, password reset) and said in its email."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts import lifecycle
from accounts.models import AccessPolicy, AuditEvent, LoginToken, TokenPurpose
from tests.factories import PortalUserFactory


def policies_url(account):
    return reverse("access-policies", kwargs={"slug": account.slug})


VALID = {
    "invitation_days": "14",
    "login_email_minutes": "",
    "magic_link_minutes": "4320",
    "password_reset_hours": "",
    "reminder_after_days": "3",
    "reminder_max": "2",
    "partner_inactive_days": "",
    "customer_inactive_days": "",
    "inactivity_warning_days": "14",
}


def test_the_account_admin_sets_lifetimes_and_the_change_is_audited(
    account, account_admin, account_admin_client
):
    response = account_admin_client.post(policies_url(account), VALID)
    assert response.status_code == 302
    policy = AccessPolicy.objects.get(portal_account=account)
    assert (policy.invitation_days, policy.magic_link_minutes) == (14, 4320)
    event = AuditEvent.objects.get(action="update_access_policy")
    assert event.actor == account_admin
    assert event.portal_account == account
    assert event.after == {"invitation_days": 14, "magic_link_minutes": 4320}
    assert event.before == {"invitation_days": None, "magic_link_minutes": None}
    # Saved again unchanged: nothing new recorded.
    account_admin_client.post(policies_url(account), VALID)
    assert AuditEvent.objects.filter(action="update_access_policy").count() == 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("magic_link_minutes", "4", "Enter between 5 and 10080 minutes."),
        ("magic_link_minutes", "10081", "Enter between 5 and 10080 minutes."),
        ("invitation_days", "31", "Enter between 1 and 30 days."),
        ("password_reset_hours", "0", "Enter between 1 and 72 hours."),
        ("login_email_minutes", "99999999999999", ""),
        ("invitation_days", "seven", "Enter a whole number."),
    ],
)
def test_a_lifetime_out_of_bounds_is_a_form_error_and_saves_nothing(
    account, technician_client, field, value, message
):
    response = technician_client.post(policies_url(account), {**VALID, field: value})
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page
    assert f'id="id_{field}_error"' in page
    assert not AccessPolicy.objects.exists()
    assert not AuditEvent.objects.filter(action="update_access_policy").exists()


def test_new_links_take_the_accounts_lifetime_and_other_accounts_keep_the_default(
    account, other_account, technician, settings
):
    AccessPolicy.objects.create(
        portal_account=account, magic_link_minutes=3 * 24 * 60, password_reset_hours=2
    )
    ours = PortalUserFactory(portal_account=account)
    theirs = PortalUserFactory(portal_account=other_account)
    before = timezone.now()
    mine = lifecycle.issue_magic_link(ours, by=technician)
    other = lifecycle.issue_magic_link(theirs, by=technician)
    assert mine.expires_at - before >= timedelta(days=3)
    assert mine.expires_at - before < timedelta(days=3, minutes=1)
    assert other.expires_at - before < settings.TOKEN_LIFETIMES["magic_link"] + timedelta(minutes=1)


def test_the_email_says_the_accounts_lifetime_and_its_link_lasts_that_long(
    account, technician, django_capture_on_commit_callbacks, mailoutbox
):
    AccessPolicy.objects.create(portal_account=account, password_reset_hours=2)
    user = PortalUserFactory(portal_account=account)
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.reset_password(user, by=technician)
    [message] = mailoutbox
    assert "2 hours" in message.body
    token = LoginToken.objects.get(user=user, purpose=TokenPurpose.PASSWORD_RESET)
    assert token.expires_at - token.created_at < timedelta(hours=2, minutes=1)
    assert token.expires_at - token.created_at > timedelta(hours=1, minutes=59)


def test_the_magic_link_page_says_the_accounts_lifetime(account, technician_client):
    AccessPolicy.objects.create(portal_account=account, magic_link_minutes=3 * 24 * 60)
    user = PortalUserFactory(portal_account=account)
    response = technician_client.post(
        reverse("user-links", kwargs={"slug": account.slug, "user_id": user.pk}),
        {"section": ""},
    )
    assert "expires in 3 days" in response.content.decode()


def test_another_accounts_admin_gets_404_and_changes_nothing(account, other_admin, client):
    from tests.conftest import console_sign_in

    console_sign_in(client, other_admin)
    assert client.get(policies_url(account)).status_code == 404
    assert client.post(policies_url(account), VALID).status_code == 404
    assert not AccessPolicy.objects.exists()
