import logging
import re

import pytest
from django.core import mail
from django.urls import reverse

from accounts import lifecycle, tokens
from accounts.models import TokenPurpose, User, UserState, UserType
from contacts import mirror
from contacts.models import Contact
from tests.factories import PASSWORD, ContactFactory, PortalUserFactory

BLOCKED = "Your account may be temporarily disabled, please contact the administrator."
NEW_PASSWORD = "a-brand-new-Passw0rd"


def link_in_last_email():
    return (
        re.search(r"http://\S+", mail.outbox[-1].body)
        .group(0)
        .removeprefix("http://127.0.0.1:8000")
    )


@pytest.fixture
def invited(account, partner_role, technician, django_capture_on_commit_callbacks):
    contact = ContactFactory(portal_account=account, name="Grace Hopper", email="grace@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        return lifecycle.invite(
            account, user_type=UserType.PARTNER, role=partner_role, by=technician, contact=contact
        )


def test_the_invitation_link_activates_and_signs_in(client, invited):
    link = link_in_last_email()
    page = client.get(link)
    assert page.status_code == 200
    assert "Activate your account" in page.content.decode()

    response = client.post(link, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    assert response.status_code == 302
    assert response.url == "/p/acme/"
    user = User.objects.get(pk=invited.pk)
    assert user.state == UserState.ENABLED
    assert user.check_password(NEW_PASSWORD)
    assert "Welcome, Grace Hopper" in client.get("/p/acme/").content.decode()
    assert (
        client.post(
            link, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
        ).status_code
        == 400
    )


def test_opening_a_link_does_not_use_it(client, invited):
    """Mail scanners follow links with GET; only the button's POST may use the token."""
    link = link_in_last_email()
    for _ in range(3):
        assert client.get(link).status_code == 200
    assert User.objects.get(pk=invited.pk).state == UserState.UNCONFIRMED


def test_a_too_short_password_is_said_under_the_password_not_its_confirmation(client, invited):
    link = link_in_last_email()
    page = client.post(link, {"new_password1": "short", "new_password2": "short"})

    assert page.status_code == 200
    form = page.context["form"]
    assert "too short" in " ".join(form.errors["new_password1"])
    assert "new_password2" not in form.errors
    assert User.objects.get(pk=invited.pk).state == UserState.UNCONFIRMED


def test_mismatched_passwords_change_nothing(client, invited):
    link = link_in_last_email()
    page = client.post(link, {"new_password1": NEW_PASSWORD, "new_password2": "different-one-1"})
    assert page.status_code == 200
    assert "didn’t match" in page.content.decode()
    assert User.objects.get(pk=invited.pk).state == UserState.UNCONFIRMED
    assert client.get(link).status_code == 200


def test_a_reinvited_users_older_link_fails_with_a_next_step(client, invited, technician):
    old_link = link_in_last_email()
    lifecycle.reinvite(invited, by=technician)
    page = client.get(old_link)
    assert page.status_code == 400
    assert "replaced by a newer one" in page.content.decode()
    assert "Go to sign in" in page.content.decode()


def test_a_link_for_one_account_fails_at_another(client, invited, other_account):
    link = link_in_last_email().replace("/p/acme/", f"/p/{other_account.slug}/")
    assert client.get(link).status_code == 400


@pytest.fixture
def enabled_user(account, partner_role):
    return PortalUserFactory(
        portal_account=account, role=partner_role, name="Alan Turing", email="alan@example.com"
    )


def test_password_reset_link_sets_a_new_password(
    client, enabled_user, technician, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.reset_password(enabled_user, by=technician)
    link = link_in_last_email()
    assert "/reset/" in link
    response = client.post(link, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response.status_code == 302
    assert User.objects.get(pk=enabled_user.pk).check_password(NEW_PASSWORD)
    assert client.get(link).status_code == 400


def test_a_login_link_signs_in_and_opens_its_section(client, enabled_user, account):
    secret = tokens.issue(enabled_user, TokenPurpose.LOGIN_EMAIL, target="courses")
    link = reverse("portal-link", kwargs={"slug": account.slug, "token": secret})
    assert "Sign in as Alan Turing" in client.get(link).content.decode()
    response = client.post(link)
    assert response.url == "/p/acme/?section=courses"
    assert "<h1>Courses</h1>" in client.get(response.url).content.decode()


def test_a_user_whose_contact_was_deleted_is_blocked(client, enabled_user, account):
    secret = tokens.issue(enabled_user, TokenPurpose.LOGIN_EMAIL)
    Contact.objects.filter(pk=enabled_user.contact_id).update(deleted_at="2026-01-01T00:00Z")
    response = client.post(reverse("portal-link", kwargs={"slug": account.slug, "token": secret}))
    assert response.status_code == 403
    assert BLOCKED in response.content.decode()


def test_password_sign_in(client, enabled_user):
    response = client.post("/p/acme/login/", {"email": "ALAN@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert "Welcome, Alan Turing" in client.get("/p/acme/").content.decode()


@pytest.mark.parametrize(
    ("state", "message"),
    # Not activated: the generic answer (the page's hint line says what to do).
    [(UserState.DISABLED, BLOCKED), (UserState.UNCONFIRMED, "do not match")],
)
def test_only_enabled_users_sign_in(client, enabled_user, state, message):
    User.objects.filter(pk=enabled_user.pk).update(state=state)
    page = client.post("/p/acme/login/", {"email": "alan@example.com", "password": PASSWORD})
    assert message in page.content.decode()
    assert client.get("/p/acme/").status_code == 302


def test_a_disabled_users_session_ends_at_once(client, enabled_user, technician):
    client.post("/p/acme/login/", {"email": "alan@example.com", "password": PASSWORD})
    lifecycle.disable(enabled_user, by=technician)
    assert client.get("/p/acme/").status_code == 302


def test_a_session_at_one_account_is_not_a_session_at_another(client, enabled_user, other_account):
    client.post("/p/acme/login/", {"email": "alan@example.com", "password": PASSWORD})
    assert client.get(f"/p/{other_account.slug}/").status_code == 302


@pytest.mark.parametrize(
    ("purpose", "url_name", "form"),
    [
        (TokenPurpose.MAGIC_LINK, "portal-magic-link", {}),
        (TokenPurpose.LOGIN_EMAIL, "portal-link", {}),
        (TokenPurpose.ACTIVATION, "portal-activate", {"new_password1": NEW_PASSWORD}),
        (TokenPurpose.PASSWORD_RESET, "portal-reset", {"new_password1": NEW_PASSWORD}),
    ],
)
def test_a_link_scanners_head_is_answered_like_a_get_and_leaves_the_link_usable(
    client, enabled_user, account, caplog, purpose, url_name, form
):
    """Link scanners send HEAD. It was a 405, which django.request logs with the URL: a live
    secret in the log."""
    if purpose == TokenPurpose.ACTIVATION:
        User.objects.filter(pk=enabled_user.pk).update(state=UserState.UNCONFIRMED)
    secret = tokens.issue(enabled_user, purpose)
    link = reverse(url_name, kwargs={"slug": account.slug, "token": secret})
    with caplog.at_level(logging.DEBUG):
        response = client.head(link)
    assert response.status_code == 200
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert secret not in caplog.text
    form = {**form, "new_password2": form["new_password1"]} if form else {}
    assert client.post(link, form).status_code == 302  # the token was not used


@pytest.mark.parametrize(
    "page", ["login/", "login/email-link/", "login/email-code/", "login/code/", "forgot-password/"]
)
def test_the_portals_pages_answer_head_as_get(client, account, page):
    get, head = client.get(f"/p/acme/{page}"), client.head(f"/p/acme/{page}")
    assert (head.status_code, head.get("Location")) == (get.status_code, get.get("Location"))
    assert head.status_code in (200, 302)


def test_unknown_portal_is_404(client, db):
    assert client.get("/p/nowhere/").status_code == 404


def test_a_signed_in_user_whose_contact_is_deleted_is_told_why(client, account, partner_role):
    user = PortalUserFactory(portal_account=account, role=partner_role)
    client.force_login(user, backend="accounts.backends.PortalBackend")
    mirror.delete_contact(user.contact, by=None)

    page = client.get("/p/acme/", follow=True)

    assert page.redirect_chain[-1][0] == "/p/acme/login/"
    assert "Your account may be temporarily disabled" in page.content.decode()
    assert "_auth_user_id" not in client.session
