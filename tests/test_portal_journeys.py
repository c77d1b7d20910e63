"""Every email journey a portal user can start from the sign-in page, through the HTTP client:
ask for a link, a code or a password reset, open the email, and end up signed in (or, for the
people who may not sign in, end up with nothing that tells an outsider they exist)."""

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import lifecycle, tokens
from accounts.models import (
    AuditEvent,
    EmailKind,
    LoginToken,
    OutboxEmail,
    TokenPurpose,
    User,
    UserState,
)
from contacts.models import Contact
from tests.factories import PASSWORD, ContactFactory, PortalUserFactory

SENT = "If an account exists for that address, we have sent an email"
HINT = (
    "Invited but not activated yet? Use the link in your invitation, or ask for a sign-in link "
    "below to get a new invitation."
)
BLOCKED = "Your account may be temporarily disabled, please contact the administrator."
WRONG_PASSWORD = "That email and password do not match."
NEW_PASSWORD = "a-brand-new-Passw0rd"

LOGIN = "/p/acme/login/"
REQUEST_LINK = "/p/acme/login/email-link/"
REQUEST_CODE = "/p/acme/login/email-code/"
ENTER_CODE = "/p/acme/login/code/"
FORGOT = "/p/acme/forgot-password/"
REQUESTS = [REQUEST_LINK, REQUEST_CODE, FORGOT]


@pytest.fixture
def alan(account, partner_role):
    return PortalUserFactory(
        portal_account=account, role=partner_role, name="Alan Turing", email="alan@example.com"
    )


@pytest.fixture
def grace(account, partner_role, technician, django_capture_on_commit_callbacks):
    """Invited, never activated."""
    with django_capture_on_commit_callbacks(execute=True):
        user = lifecycle.invite(
            account,
            user_type="partner",
            role=partner_role,
            by=technician,
            name="Grace Hopper",
            email="grace@example.com",
        )
    mail.outbox.clear()
    return user


@pytest.fixture
def ask(client, django_capture_on_commit_callbacks):
    """POST an email to one of the request pages, sending whatever it queues."""

    def post(url, email, **extra):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url, {"email": email}, **extra)

    return post


def path_in(message):
    return re.search(r"http://\S+", message.body).group(0).removeprefix("http://127.0.0.1:8000")


def code_in(message):
    return re.search(r"^\s+(\d{6})$", message.body, re.MULTILINE).group(1)


def signed_in_as(client, name):
    page = client.get("/p/acme/")
    return page.status_code == 200 and f"Welcome, {name}" in page.content.decode()


def comparable(response, email):
    """The page with what legitimately differs between two requests taken out: the CSRF token
    (masked afresh on every render) and the address the person typed."""
    text = response.content.decode().replace(email, "EMAIL")
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", text)


# --- The sign-in page ---


def test_the_sign_in_page_offers_every_way_in(client, account):
    page = client.get(LOGIN).content.decode()
    for offer in [
        "Password",
        "Email me a sign-in link",
        "Email me a code",
        "Forgot your password?",
    ]:
        assert offer in page
    assert HINT in page


def test_unknown_email_and_wrong_password_get_the_same_answer(client, alan):
    unknown = client.post(LOGIN, {"email": "nobody@example.com", "password": PASSWORD})
    wrong = client.post(LOGIN, {"email": "alan@example.com", "password": "not-the-password"})
    assert unknown.status_code == wrong.status_code == 200
    assert WRONG_PASSWORD in unknown.content.decode()
    assert comparable(unknown, "nobody@example.com") == comparable(wrong, "alan@example.com")


def test_an_invited_user_gets_the_generic_answer_and_the_hint(client, grace):
    page = client.post(LOGIN, {"email": "grace@example.com", "password": "anything-at-all"})
    assert WRONG_PASSWORD in page.content.decode()
    assert HINT in page.content.decode()


def test_a_disabled_user_learns_why_only_after_the_right_password(client, alan, technician):
    lifecycle.disable(alan, by=technician)
    wrong = client.post(LOGIN, {"email": "alan@example.com", "password": "nope-nope"})
    right = client.post(LOGIN, {"email": "alan@example.com", "password": PASSWORD})
    assert BLOCKED not in wrong.content.decode()
    assert BLOCKED in right.content.decode()
    assert client.get("/p/acme/").status_code == 302


def test_console_staff_credentials_do_not_sign_in_at_a_portal(client, account, technician):
    page = client.post(LOGIN, {"email": technician.email, "password": PASSWORD})
    assert WRONG_PASSWORD in page.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_portal_sign_in_replaces_a_console_session(technician_client, alan):
    technician_client.post(LOGIN, {"email": "alan@example.com", "password": PASSWORD})
    assert signed_in_as(technician_client, "Alan Turing")
    assert technician_client.get(reverse("portal-accounts")).status_code == 302


def test_signing_in_at_one_account_is_no_session_at_another(client, alan, other_account):
    client.post(LOGIN, {"email": "alan@example.com", "password": PASSWORD})
    response = client.get(f"/p/{other_account.slug}/")
    assert response.status_code == 302
    assert response.url == f"/p/{other_account.slug}/login/"


def test_disabling_a_user_ends_their_portal_session_at_once(client, alan, technician):
    client.post(LOGIN, {"email": "alan@example.com", "password": PASSWORD})
    assert signed_in_as(client, "Alan Turing")
    lifecycle.disable(alan, by=technician)
    assert client.get("/p/acme/").status_code == 302


# --- Email me a sign-in link ---


def test_a_sign_in_link_from_the_sign_in_page(client, alan, ask):
    page = ask(REQUEST_LINK, "Alan@Example.com ")

    assert page.status_code == 200
    assert SENT in page.content.decode()
    (message,) = mail.outbox
    assert message.to == ["alan@example.com"]
    assert message.subject == "Your sign-in link for Acme Portal"
    link = path_in(message)
    assert "Sign in as Alan Turing" in client.get(link).content.decode()
    assert client.post(link).url == "/p/acme/"
    assert signed_in_as(client, "Alan Turing")
    event = AuditEvent.objects.get(action="send_login_email")
    assert (event.actor, event.subject_user, event.ip_address) == (alan, alan, "127.0.0.1")


def test_a_sign_in_link_works_once(client, alan, ask):
    ask(REQUEST_LINK, "alan@example.com")
    link = path_in(mail.outbox[-1])
    client.post(link)
    client.post(reverse("portal-logout", args=["acme"]))
    again = client.post(link)
    assert again.status_code == 400
    assert "already been used" in again.content.decode()
    assert not signed_in_as(client, "Alan Turing")


def test_one_accounts_link_fails_at_another(client, alan, ask, other_account):
    ask(REQUEST_LINK, "alan@example.com")
    link = path_in(mail.outbox[-1]).replace("/p/acme/", f"/p/{other_account.slug}/")
    assert client.get(link).status_code == 400
    assert client.post(link).status_code == 400
    assert client.get(f"/p/{other_account.slug}/").status_code == 302
    assert not signed_in_as(client, "Alan Turing")


def test_asking_at_another_account_sends_nothing(alan, ask, other_account):
    page = ask(f"/p/{other_account.slug}/login/email-link/", "alan@example.com")
    assert SENT in page.content.decode()
    assert mail.outbox == []


# --- Email me a code ---


def test_a_code_from_the_sign_in_page(client, alan, ask):
    page = ask(REQUEST_CODE, "alan@example.com")

    assert page.status_code == 200
    assert "Enter your sign-in code" in page.content.decode()
    assert "we have sent an email with a 6-digit code" in page.content.decode()
    (message,) = mail.outbox
    assert message.subject == "Your sign-in code for Acme Portal"
    code = code_in(message)
    assert "expires in 10 minutes" in message.body
    assert "http" not in message.body  # a code instead of a link
    assert code in message.alternatives[0][0]
    response = client.post(
        ENTER_CODE, {"email": "alan@example.com", "code": f" {code[:3]} {code[3:]}"}
    )
    assert response.status_code == 302
    assert signed_in_as(client, "Alan Turing")


def test_a_code_works_once(client, alan, ask):
    ask(REQUEST_CODE, "alan@example.com")
    code = code_in(mail.outbox[-1])
    client.post(ENTER_CODE, {"email": "alan@example.com", "code": code})
    client.post(reverse("portal-logout", args=["acme"]))
    again = client.post(ENTER_CODE, {"email": "alan@example.com", "code": code})
    assert "This code has expired. Ask for a new one." in again.content.decode()
    assert not signed_in_as(client, "Alan Turing")


def test_five_wrong_codes_lock_the_code(client, alan, ask, settings):
    settings.SIGN_IN_MAX_FAILURES = 100  # this test is about the code, not the throttle
    ask(REQUEST_CODE, "alan@example.com")
    code = code_in(mail.outbox[-1])
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(5):
        page = client.post(ENTER_CODE, {"email": "alan@example.com", "code": wrong})
        assert "That code is not right." in page.content.decode()

    page = client.post(ENTER_CODE, {"email": "alan@example.com", "code": code})

    assert "This code has expired. Ask for a new one." in page.content.decode()
    assert "Email me a new code" in page.content.decode()
    assert not signed_in_as(client, "Alan Turing")
    ask(REQUEST_CODE, "alan@example.com")
    client.post(ENTER_CODE, {"email": "alan@example.com", "code": code_in(mail.outbox[-1])})
    assert signed_in_as(client, "Alan Turing")


def test_an_expired_code_says_to_ask_for_a_new_one(client, alan, ask):
    ask(REQUEST_CODE, "alan@example.com")
    LoginToken.objects.filter(user=alan).update(expires_at=timezone.now())
    page = client.post(ENTER_CODE, {"email": "alan@example.com", "code": code_in(mail.outbox[-1])})
    assert "This code has expired. Ask for a new one." in page.content.decode()
    assert f'action="{REQUEST_CODE}"' in page.content.decode()


def test_a_malformed_code_costs_no_attempt(client, alan, ask):
    ask(REQUEST_CODE, "alan@example.com")
    for typo in ["12345", "abcdef", ""]:
        page = client.post(ENTER_CODE, {"email": "alan@example.com", "code": typo})
        assert "Enter your email and the 6 digits" in page.content.decode()
    assert LoginToken.objects.get(user=alan, used_at=None).failed_attempts == 0


def test_a_code_for_an_address_that_got_none_answers_like_a_real_one(client, alan, ask, settings):
    """Asking for a code and guessing must not tell whether the address has an account."""
    settings.SIGN_IN_MAX_FAILURES = 100
    ask(REQUEST_CODE, "alan@example.com")
    wrong = f"{(int(code_in(mail.outbox[-1])) + 1) % 10**6:06d}"
    ask(REQUEST_CODE, "nobody@example.com")

    for attempt in range(6):
        real = client.post(ENTER_CODE, {"email": "alan@example.com", "code": wrong})
        decoy = client.post(ENTER_CODE, {"email": "nobody@example.com", "code": wrong})
        assert real.status_code == decoy.status_code == 200
        assert comparable(real, "alan@example.com") == comparable(decoy, "nobody@example.com")
        expected = "That code is not right." if attempt < 5 else "This code has expired."
        assert expected in decoy.content.decode()


# --- Forgot password ---


def test_forgot_password_then_the_new_password_works_and_the_old_one_does_not(client, alan, ask):
    assert "Forgot your password?" in client.get(FORGOT).content.decode()
    page = ask(FORGOT, "alan@example.com")

    assert SENT in page.content.decode()
    (message,) = mail.outbox
    assert message.subject == "Reset your Acme Portal password"
    link = path_in(message)
    assert "/p/acme/reset/" in link
    response = client.post(link, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response.url == "/p/acme/"
    client.post(reverse("portal-logout", args=["acme"]))

    old = client.post(LOGIN, {"email": "alan@example.com", "password": PASSWORD})
    assert WRONG_PASSWORD in old.content.decode()
    assert client.post(LOGIN, {"email": "alan@example.com", "password": NEW_PASSWORD}).url == (
        "/p/acme/"
    )
    assert AuditEvent.objects.get(action="reset_password").actor == alan


def test_a_new_password_is_audited_and_signs_out_the_old_sessions(client, alan, ask):
    elsewhere = Client()
    elsewhere.post(LOGIN, {"email": "alan@example.com", "password": PASSWORD})
    assert elsewhere.get("/p/acme/").status_code == 200
    ask(FORGOT, "alan@example.com")

    client.post(
        path_in(mail.outbox[-1]), {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )

    assert AuditEvent.objects.filter(action="set_new_password", subject_user=alan).exists()
    assert elsewhere.get("/p/acme/").status_code == 302  # the session opened before is gone
    assert client.get("/p/acme/").status_code == 200


# --- Who gets what: the answer never says ---


@pytest.mark.parametrize("url", REQUESTS)
def test_an_unknown_address_gets_the_same_answer_and_no_email(alan, ask, url):
    known = ask(url, "alan@example.com")
    unknown = ask(url, "nobody@example.com")
    assert known.status_code == unknown.status_code == 200
    assert comparable(known, "alan@example.com") == comparable(unknown, "nobody@example.com")
    assert [message.to for message in mail.outbox] == [["alan@example.com"]]


@pytest.mark.parametrize("url", REQUESTS)
def test_an_invited_user_gets_their_invitation_again_instead(client, grace, ask, url):
    page = ask(url, "grace@example.com")

    assert page.status_code == 200
    (message,) = mail.outbox
    assert message.subject == "Your invitation to Acme Portal"
    link = path_in(message)
    assert "/p/acme/activate/" in link
    assert OutboxEmail.objects.filter(user=grace, kind=EmailKind.REINVITATION).count() == 1
    assert not LoginToken.objects.filter(user=grace).exclude(purpose="activation").exists()
    assert AuditEvent.objects.get(action="reinvite").actor == grace
    client.post(link, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert signed_in_as(client, "Grace Hopper")


def _disabled(user, technician):
    lifecycle.disable(user, by=technician)


def _contact_deleted(user, technician):
    Contact.objects.filter(pk=user.contact_id).update(deleted_at=timezone.now())


def _deleted(user, technician):
    lifecycle.delete(user, by=technician)


@pytest.mark.parametrize("url", REQUESTS)
@pytest.mark.parametrize("block", [_disabled, _contact_deleted, _deleted])
def test_people_who_may_not_sign_in_get_no_link_and_the_same_answer(
    alan, technician, ask, url, block, partner_role
):
    PortalUserFactory(
        portal_account=alan.portal_account, role=partner_role, email="bob@example.com"
    )
    block(alan, technician)
    blocked = ask(url, "alan@example.com")
    allowed = ask(url, "bob@example.com")
    assert blocked.status_code == allowed.status_code == 200
    assert comparable(blocked, "alan@example.com") == comparable(allowed, "bob@example.com")
    assert ["bob@example.com"] in [message.to for message in mail.outbox]
    for message in mail.outbox:
        if message.to == ["alan@example.com"]:
            assert "http" not in message.body
            assert not re.search(r"\d{6}", message.body)
    assert (
        not LoginToken.objects.filter(user__email="alan@example.com")
        .exclude(purpose="activation")
        .exists()
    )


@pytest.mark.parametrize("url", REQUESTS)
@pytest.mark.parametrize("block", [_disabled, _contact_deleted])
def test_a_blocked_user_is_told_by_email_why_nothing_else_came(alan, technician, ask, url, block):
    block(alan, technician)
    ask(url, "alan@example.com")
    (message,) = mail.outbox
    assert message.to == ["alan@example.com"]
    assert message.subject == "Your account at Acme Portal may be disabled"
    assert BLOCKED in message.body
    assert BLOCKED in message.alternatives[0][0]
    row = OutboxEmail.objects.get(user=alan, kind=EmailKind.ACCESS_BLOCKED)
    assert row.queued_by == alan
    event = AuditEvent.objects.get(action="send_access_blocked")
    assert event.subject_user == alan
    reason = "contact deleted" if block is _contact_deleted else "user disabled"
    assert event.detail == reason


def test_the_blocked_notice_is_throttled_like_the_link(alan, technician, ask, settings):
    settings.PORTAL_LINK_REQUESTS_MAX = 2
    _contact_deleted(alan, technician)
    answers = [ask(REQUEST_LINK, "alan@example.com").status_code for _ in range(3)]
    assert answers == [200, 200, 429]
    assert len(mail.outbox) == 2


def test_an_invited_user_whose_contact_was_deleted_is_told_why(grace, ask):
    Contact.objects.filter(pk=grace.contact_id).update(deleted_at=timezone.now())
    assert SENT in ask(REQUEST_LINK, "grace@example.com").content.decode()
    (message,) = mail.outbox
    assert BLOCKED in message.body
    assert "/activate/" not in message.body


@pytest.mark.parametrize("email", ["", "not-an-email"])
def test_an_address_that_is_no_address_is_asked_again(ask, account, email):
    page = ask(REQUEST_LINK, email)
    assert "Enter your email address." in page.content.decode()
    assert mail.outbox == []


# --- Failure pages lead to the next step ---


def test_an_expired_invitation_leads_to_a_new_one(client, grace, ask):
    ask(REQUEST_LINK, "grace@example.com")
    old = path_in(mail.outbox[-1])
    LoginToken.objects.filter(user=grace).update(expires_at=timezone.now())

    page = client.get(old)

    assert page.status_code == 400
    text = page.content.decode()
    assert "This link has expired." in text
    assert "Email me a new invitation" in text
    assert f'action="{REQUEST_LINK}"' in text
    ask(REQUEST_LINK, "grace@example.com")
    new = path_in(mail.outbox[-1])
    client.post(new, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert User.objects.get(pk=grace.pk).state == UserState.ENABLED


def test_a_used_sign_in_link_offers_a_new_one(client, alan, ask):
    ask(REQUEST_LINK, "alan@example.com")
    link = path_in(mail.outbox[-1])
    client.post(link)
    page = client.get(link).content.decode()
    assert "Email me a new sign-in link" in page
    assert f'action="{REQUEST_LINK}"' in page
    assert "Go to sign in" in page


def test_a_dead_reset_link_offers_a_new_reset(client, alan, ask):
    ask(FORGOT, "alan@example.com")
    first = path_in(mail.outbox[-1])
    ask(FORGOT, "alan@example.com")
    page = client.get(first).content.decode()
    assert "replaced by a newer one" in page
    assert "Email me a new reset link" in page
    assert f'action="{FORGOT}"' in page


def test_an_invitation_link_of_a_deleted_contact_activates_nothing(
    client, account, partner_role, technician
):
    contact = ContactFactory(portal_account=account, name="Ivy", email="ivy@example.com")
    user = lifecycle.invite(
        account, user_type="partner", role=partner_role, by=technician, contact=contact
    )
    secret = tokens.issue(user, TokenPurpose.ACTIVATION)
    Contact.objects.filter(pk=contact.pk).update(deleted_at=timezone.now())
    url = reverse("portal-activate", args=[account.slug, secret])

    page = client.post(
        url, {"new_password1": "a-long-password-1", "new_password2": "a-long-password-1"}
    )

    assert page.status_code == 403
    assert "temporarily disabled" in page.content.decode()
    assert User.objects.get(pk=user.pk).state == UserState.UNCONFIRMED
