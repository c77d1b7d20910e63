import re

import pytest
from django.urls import reverse

from accounts.models import UserState
from tests.factories import PASSWORD, PortalUserFactory

SIGN_IN = reverse("login")


def sign_in(client, email, password=PASSWORD):
    return client.post(SIGN_IN, {"username": email, "password": password})


@pytest.mark.parametrize("persona", ["mssp_admin", "technician", "account_admin"])
def test_console_people_sign_in_with_email_and_password(client, persona, request):
    person = request.getfixturevalue(persona)
    response = sign_in(client, person.email.upper())
    assert response.status_code == 302
    assert response.url == reverse("home")
    landing = client.get(reverse("home")).url
    if person.is_mssp:  # MSSP staff must set up a second factor first (accounts/two_factor.py)
        assert landing.startswith(reverse("two-factor-set-up"))
    else:
        assert landing == reverse("dashboard", args=[person.portal_account.slug])


def test_a_wrong_password_shows_a_plain_message(client, technician):
    response = sign_in(client, technician.email, "not-the-password")
    assert response.status_code == 200
    assert "Please enter a correct email and password" in response.content.decode()


def test_portal_users_who_are_not_account_admins_cannot_enter(client, account, partner_role):
    user = PortalUserFactory(portal_account=account, role=partner_role)
    assert sign_in(client, user.email).status_code == 200
    client.force_login(user, backend="accounts.backends.PortalBackend")
    assert client.get(reverse("home")).url.startswith(SIGN_IN)


def test_a_portal_sign_in_is_not_a_console_sign_in(client, account_admin):
    client.force_login(account_admin, backend="accounts.backends.PortalBackend")
    assert client.get(reverse("users", args=["acme"])).url.startswith(SIGN_IN)


def test_a_portal_session_gets_the_sign_in_page_not_a_redirect_loop(client, account_admin):
    client.force_login(account_admin, backend="accounts.backends.PortalBackend")
    page = client.get(SIGN_IN)
    assert page.status_code == 200
    assert sign_in(client, account_admin.email).status_code == 302


def test_a_console_session_skips_the_sign_in_page(admin_client):
    assert admin_client.get(SIGN_IN).status_code == 302


def test_a_disabled_account_admin_cannot_sign_in(client, account_admin):
    account_admin.state = UserState.DISABLED
    account_admin.save()
    assert sign_in(client, account_admin.email).status_code == 200


def test_the_same_email_may_be_admin_of_two_accounts(client, account_admin, other_account):
    twin = PortalUserFactory(
        portal_account=other_account,
        is_account_admin=True,
        email=account_admin.email,
        password="another-password-9",
    )
    assert sign_in(client, twin.email, "another-password-9").status_code == 302
    assert client.get(reverse("home")).url == reverse("dashboard", args=["globex"])
    assert client.get(reverse("users", args=["acme"])).status_code == 404


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response.url.startswith(SIGN_IN)


def test_an_account_admin_sees_only_their_own_account(account_admin_client, other_account):
    assert account_admin_client.get(reverse("users", args=["acme"])).status_code == 200
    assert account_admin_client.get(reverse("users", args=["globex"])).status_code == 404


def test_sign_out_is_a_post(admin_client):
    assert admin_client.post(reverse("logout")).status_code == 302
    assert admin_client.get(reverse("home")).status_code == 302


def test_sent_mail_page_exists_only_in_debug_with_the_mail_folder(admin_client, settings, tmp_path):
    assert admin_client.get(reverse("sent-mail")).status_code == 404
    settings.DEBUG = True
    settings.EMAIL_BACKEND = "mail.mail_folder.MailFolderBackend"
    settings.MAIL_FOLDER = tmp_path
    from django.core.mail import send_mail

    send_mail(
        "Hello there", "Body with http://127.0.0.1:8000/p/acme/", "a@b.c", ["grace@example.com"]
    )
    page = admin_client.get(reverse("sent-mail")).content.decode()
    assert "Hello there" in page
    assert "grace@example.com" in page


def test_sent_mail_page_says_how_many_and_when_in_the_consoles_format(
    admin_client, settings, tmp_path
):
    settings.DEBUG = True
    settings.EMAIL_BACKEND = "mail.mail_folder.MailFolderBackend"
    settings.MAIL_FOLDER = tmp_path
    from django.core.mail import send_mail

    for subject in ("First", "Second"):
        send_mail(subject, "Body", "a@b.c", ["grace@example.com"])
    page = admin_client.get(reverse("sent-mail")).content.decode()

    assert "All 2 are shown here, newest first" in page
    assert page.index("Second") < page.index("First")
    assert re.search(r'<time datetime="[^"]+">\w{3} \d{1,2}, \d{4} \d\d:\d\d</time>', page)
    assert "+0000" not in page  # not the RFC 2822 Date header as it is
