"""A portal user's sign-in links page: every link issued to them, revoking a live one, and a
magic link created in the console and handed over by the console person."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import lifecycle, tokens
from accounts.models import AuditEvent, LoginToken, TokenPurpose, UserState
from accounts.portal_sections import SECTIONS
from contacts.models import Contact
from tests.factories import PortalUserFactory

HTMX = {"HX-Request": "true"}
MAGIC = re.compile(r"http://127\.0\.0\.1:8000/p/acme/magic/([A-Za-z0-9_-]{20,})/")


def links_url(user):
    return reverse("user-links", args=[user.portal_account.slug, user.pk])


def revoke_url(user, token):
    return reverse("user-link-revoke", args=[user.portal_account.slug, user.pk, token.pk])


def magic_path(secret):
    return f"/p/acme/magic/{secret}/"


@pytest.fixture(autouse=True)
def _portal_base_url(settings):
    settings.PORTAL_BASE_URL = "http://127.0.0.1:8000"


@pytest.fixture
def pia(account, partner_role):
    return PortalUserFactory(
        portal_account=account, role=partner_role, name="Pia Portal", email="pia@acme.example"
    )


def create_link(client, user, section="", **headers):
    return client.post(links_url(user), {"section": section}, headers=headers)


def secret_in(response):
    return MAGIC.search(response.content.decode()).group(1)


def all_token_values():
    return [str(v) for row in LoginToken.objects.values() for v in row.values()]


def test_a_magic_link_is_shown_once_as_an_absolute_link_and_stored_only_as_a_hash(
    technician_client, technician, pia
):
    response = create_link(technician_client, pia, "courses")

    assert response.status_code == 200
    page = response.content.decode()
    secret = secret_in(response)
    assert page.count(magic_path(secret)) == 1
    assert "signs them in once" in page
    assert "expires in 15 minutes" in page
    assert "will not be shown again" in page
    assert "no-store" in response["Cache-Control"]
    token = LoginToken.objects.get(user=pia)
    assert (token.purpose, token.target, token.created_by) == (
        TokenPurpose.MAGIC_LINK,
        "courses",
        technician,
    )
    assert not any(secret in value for value in all_token_values())
    assert not any(secret in str(value) for value in technician_client.session.values())
    event = AuditEvent.objects.get(action="issue_magic_link")
    assert (event.subject_user, event.actor, event.detail) == (pia, technician, "courses")
    assert secret not in str(AuditEvent.objects.values())

    again = technician_client.get(links_url(pia)).content.decode()
    assert secret not in again
    assert "Magic link" in again
    assert "Courses" in again
    assert "Live" in again


def test_a_second_magic_link_kills_the_first(technician_client, client, pia):
    first = secret_in(create_link(technician_client, pia))
    second = secret_in(create_link(technician_client, pia))

    assert first != second
    assert client.get(magic_path(first)).status_code == 400
    assert client.get(magic_path(second)).status_code == 200
    page = technician_client.get(links_url(pia)).content.decode()
    assert page.count("Revoked") == 1
    assert page.count("Live") == 1


def test_the_link_asks_before_signing_in_then_lands_on_the_section(technician_client, pia):
    secret = secret_in(create_link(technician_client, pia, "courses"))
    portal = Client()

    confirm = portal.get(magic_path(secret))
    assert confirm.status_code == 200
    assert "Continue to Acme Portal" in confirm.content.decode()
    assert LoginToken.objects.get(user=pia).used_at is None

    response = portal.post(magic_path(secret))
    assert response.status_code == 302
    assert response.url == "/p/acme/?section=courses"
    assert "Courses" in portal.get(response.url).content.decode()
    assert portal.post(magic_path(secret)).status_code == 400

    page = technician_client.get(links_url(pia)).content.decode()
    assert "Used" in page
    assert "Theo Tech" in page
    assert "Revoke<" not in page  # nothing left to revoke


def test_the_table_lists_every_link_newest_first_with_who_when_and_status(
    admin_client, technician, pia
):
    tokens.issue(pia, TokenPurpose.ACTIVATION)  # minted by the email sender
    tokens.issue(pia, TokenPurpose.PASSWORD_RESET)
    tokens.issue(pia, TokenPurpose.LOGIN_EMAIL, target="communities")
    tokens.issue_code(pia)
    lifecycle.issue_magic_link(pia, by=technician, target="affiliates")
    by_purpose = {t.purpose: t for t in LoginToken.objects.filter(user=pia)}
    LoginToken.objects.filter(pk=by_purpose[TokenPurpose.ACTIVATION].pk).update(
        used_at=timezone.now()
    )
    LoginToken.objects.filter(pk=by_purpose[TokenPurpose.PASSWORD_RESET].pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    LoginToken.objects.filter(pk=by_purpose[TokenPurpose.LOGIN_CODE].pk).update(
        revoked_at=timezone.now()
    )

    page = admin_client.get(links_url(pia)).content.decode()

    rows = re.findall(r'<tr id="token-(\d+)">(.*?)</tr>', page, re.S)
    labels = [re.search(r"<td>(.*?)</td>", row).group(1) for _, row in rows]
    assert labels == ["Magic link", "One-time code", "Login email", "Password reset", "Invitation"]
    cells = dict(zip(labels, (row for _, row in rows), strict=True))
    assert "Theo Tech" in cells["Magic link"]
    assert "Affiliates" in cells["Magic link"]
    assert "Live" in cells["Magic link"]
    assert "Revoke" in cells["Magic link"]
    assert "system" in cells["Login email"]
    assert "Communities" in cells["Login email"]
    assert "Revoked" in cells["One-time code"]
    assert "Revoke<" not in cells["One-time code"]
    assert "Expired" in cells["Password reset"]
    assert "Used" in cells["Invitation"]
    assert "system" in cells["Invitation"]


def test_revoking_a_live_link_stops_it(technician_client, technician, client, pia):
    secret = secret_in(create_link(technician_client, pia))
    token = LoginToken.objects.get(user=pia)

    response = technician_client.post(revoke_url(pia, token), follow=True)

    assert response.redirect_chain == [(links_url(pia), 302)]
    assert "Magic link revoked: it no longer works." in response.content.decode()
    assert LoginToken.objects.get(pk=token.pk).revoked_at is not None
    event = AuditEvent.objects.get(action="revoke_link")
    assert (event.subject_user, event.actor, event.detail) == (pia, technician, "Magic link")
    assert client.get(magic_path(secret)).status_code == 400
    assert client.post(magic_path(secret)).status_code == 400


def test_revoking_with_htmx_re_renders_the_panel(technician_client, pia):
    secret_in(create_link(technician_client, pia))
    token = LoginToken.objects.get(user=pia)

    response = technician_client.post(revoke_url(pia, token), headers=HTMX)

    assert response.status_code == 200
    page = response.content.decode()
    assert "<html" not in page
    assert "Magic link revoked" in page
    assert "Revoked" in page


def test_revoking_a_used_link_changes_nothing(technician_client, pia):
    tokens.issue(pia, TokenPurpose.LOGIN_EMAIL)
    token = LoginToken.objects.get(user=pia)
    LoginToken.objects.filter(pk=token.pk).update(used_at=timezone.now())
    before = list(LoginToken.objects.values())

    response = technician_client.post(revoke_url(pia, token))

    assert response.status_code == 409
    assert "This login email is already used: nothing to revoke." in response.content.decode()
    assert list(LoginToken.objects.values()) == before
    assert not AuditEvent.objects.filter(action="revoke_link").exists()


def test_revoke_is_post_only(technician_client, pia):
    tokens.issue(pia, TokenPurpose.LOGIN_EMAIL)
    token = LoginToken.objects.get(user=pia)
    assert technician_client.get(revoke_url(pia, token)).status_code == 405
    assert LoginToken.objects.get(pk=token.pk).is_live


@pytest.mark.parametrize("state", [UserState.DISABLED, UserState.UNCONFIRMED])
def test_no_magic_link_for_a_user_who_cannot_sign_in(technician_client, pia, state):
    pia.state = state
    pia.save()

    response = create_link(technician_client, pia)

    assert response.status_code == 409
    assert f"Cannot create a magic link for Pia Portal: the user is {state.label}" in (
        response.content.decode()
    )
    assert not LoginToken.objects.exists()
    assert not AuditEvent.objects.exists()
    page = technician_client.get(links_url(pia)).content.decode()
    assert "Create a magic link" not in page  # the form is not offered either


def test_no_magic_link_when_the_contact_was_deleted(technician_client, pia):
    Contact.objects.filter(pk=pia.contact_id).update(deleted_at=timezone.now())
    response = create_link(technician_client, pia)
    assert response.status_code == 409
    assert "contact was deleted" in response.content.decode()
    assert not LoginToken.objects.exists()


def test_a_made_up_section_is_refused(technician_client, pia):
    response = create_link(technician_client, pia, "billing")
    assert response.status_code == 409
    assert "is not a portal section" in response.content.decode()
    assert not LoginToken.objects.exists()


def test_the_sections_offered_are_the_portal_sections():
    assert set(lifecycle.PORTAL_SECTIONS) == set(SECTIONS)


def test_an_account_admin_manages_links_of_their_team_but_not_of_their_own_seat(
    account_admin_client, account_admin, pia
):
    assert account_admin_client.get(links_url(pia)).status_code == 200
    assert create_link(account_admin_client, pia).status_code == 200

    tokens.issue(account_admin, TokenPurpose.LOGIN_EMAIL)
    own = LoginToken.objects.get(user=account_admin)
    before = list(LoginToken.objects.values())
    assert account_admin_client.get(links_url(account_admin)).status_code == 403
    assert create_link(account_admin_client, account_admin).status_code == 403
    assert account_admin_client.post(revoke_url(account_admin, own)).status_code == 403
    assert list(LoginToken.objects.values()) == before


def test_another_accounts_user_or_token_is_not_found(
    account_admin_client, technician, pia, other_account, other_admin
):
    gus = PortalUserFactory(portal_account=other_account, name="Gert Globex")
    tokens.issue(gus, TokenPurpose.MAGIC_LINK, by=technician)
    foreign = LoginToken.objects.get(user=gus)
    before = list(LoginToken.objects.values())

    own_slug_foreign_token = reverse("user-link-revoke", args=["acme", pia.pk, foreign.pk])
    assert account_admin_client.post(own_slug_foreign_token).status_code == 404
    assert account_admin_client.post(revoke_url(gus, foreign)).status_code == 404
    assert account_admin_client.get(links_url(gus)).status_code == 404
    assert create_link(account_admin_client, gus).status_code == 404
    foreign_user_in_own_account = reverse("user-links", args=["acme", gus.pk])
    assert account_admin_client.post(foreign_user_in_own_account).status_code == 404
    assert list(LoginToken.objects.values()) == before
    assert not AuditEvent.objects.exists()


def test_htmx_gets_the_panel_or_a_dialog(technician_client, pia):
    panel = create_link(technician_client, pia, "communities", **HTMX)
    assert panel.status_code == 200
    assert "<html" not in panel.content.decode()
    assert MAGIC.search(panel.content.decode())

    dialog = technician_client.get(links_url(pia), headers={**HTMX, "HX-Target": "dialog-slot"})
    assert dialog["HX-Retarget"] == "#dialog-slot"
    assert "<dialog" in dialog.content.decode()
    assert "data-open-on-load" in dialog.content.decode()
    refused = technician_client.post(
        links_url(pia), {"section": "nope"}, headers={**HTMX, "HX-Target": "dialog-slot"}
    )
    assert refused.status_code == 409
    assert "<dialog" in refused.content.decode()


def test_the_page_makes_a_fixed_number_of_queries(
    admin_client, technician, pia, django_assert_num_queries
):
    def issue(n):
        for _ in range(n):
            lifecycle.issue_magic_link(pia, by=technician)

    issue(3)
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get(links_url(pia)).status_code == 200
    issue(9)
    assert LoginToken.objects.filter(user=pia).count() == 12
    with django_assert_num_queries(len(few)):
        assert admin_client.get(links_url(pia)).status_code == 200


def test_lifetime_in_the_text_follows_the_setting(technician_client, pia, settings):
    settings.TOKEN_LIFETIMES = {**settings.TOKEN_LIFETIMES, "magic_link": timedelta(minutes=30)}
    page = create_link(technician_client, pia).content.decode()
    assert "expires in 30 minutes" in page
    assert settings.PORTAL_BASE_URL + "/p/acme/magic/" in page
