"""No takeover through the CRM: a new email from the CRM for anyone with a password (an account
admin, any activated portal user) does not move their sign-in identity until the new address
proves itself; the old address is told, and "forgot password" at the new address opens
nothing."""

import re

import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import AuditEvent, User
from helpers.log_redaction import redact
from tests.factories import PASSWORD, PortalUserFactory
from tests.test_sync_endpoint import upsert

NEW = "attacker@evil.example"


@pytest.fixture
def ada(account_admin):
    return account_admin


@pytest.fixture
def sync(api_client, django_capture_on_commit_callbacks):
    def change_email(user, email):
        with django_capture_on_commit_callbacks(execute=True):
            response = upsert(
                api_client,
                {"contact_id": user.contact.contact_id, "name": user.name, "email": email},
            )
        assert response.status_code == 200, response.content
        return User.objects.get(pk=user.pk)

    return change_email


def confirmation_path():
    message = next(m for m in mail.outbox if m.to == [NEW])
    return re.search(r"https?://[^/\s]+(/p/\S+/confirm-email/\S+/)", message.body).group(1)


def test_a_crm_email_change_for_an_account_admin_waits_for_the_new_address(ada, sync):
    user = sync(ada, NEW)

    assert (user.email, user.pending_email) == ("ada.admin@acme.example", NEW)
    assert user.contact.email == NEW  # the mirror still follows the CRM
    to_old = [m for m in mail.outbox if m.to == ["ada.admin@acme.example"]]
    assert "is about to change" in to_old[0].subject
    assert NEW in to_old[0].body
    assert "/confirm-email/" in next(m for m in mail.outbox if m.to == [NEW]).body
    event = AuditEvent.objects.get(action="user_follows_contact")
    assert "stays until" in event.detail


def test_forgot_password_at_the_new_address_opens_nothing(ada, sync, client):
    sync(ada, NEW)
    mail.outbox.clear()

    client.post("/p/acme/forgot-password/", {"email": NEW})
    console = client.post("/sign-in/", {"username": NEW, "password": PASSWORD})

    assert mail.outbox == []
    assert "_auth_user_id" not in client.session
    assert console.status_code == 200


def test_the_admin_still_signs_in_to_the_console_with_the_old_address(ada, sync, client):
    sync(ada, NEW)
    response = client.post("/sign-in/", {"username": ada.email, "password": PASSWORD})
    assert response.status_code == 302


def test_the_link_sent_to_the_new_address_moves_the_email(ada, sync, client):
    sync(ada, NEW)
    path = confirmation_path()

    page = client.get(path)
    assert f"Confirm {NEW}" in page.content.decode()
    assert User.objects.get(pk=ada.pk).email == ada.email  # a link scanner's GET changes nothing

    done = client.post(path, {"password": PASSWORD})

    assert done.status_code == 200
    user = User.objects.get(pk=ada.pk)
    assert (user.email, user.pending_email) == (NEW, "")
    assert AuditEvent.objects.filter(action="confirm_email_change", subject_user=ada).exists()
    assert client.post(path, {"password": PASSWORD}).status_code == 400  # once only


def test_a_crm_that_changes_its_mind_withdraws_the_pending_change(ada, sync, client):
    sync(ada, NEW)
    path = confirmation_path()

    user = sync(ada, "ada.admin@acme.example")

    assert user.pending_email == ""
    assert client.post(path).status_code == 400
    assert User.objects.get(pk=ada.pk).email == "ada.admin@acme.example"


def test_a_second_change_kills_the_first_link(ada, sync, client):
    sync(ada, NEW)
    first = confirmation_path()
    sync(ada, "ada.new@acme.example")

    assert client.post(first).status_code == 400
    assert User.objects.get(pk=ada.pk).pending_email == "ada.new@acme.example"


def test_any_portal_user_with_a_password_waits_too(account, partner_role, sync, client):
    """Not only admins: a contact-sync token pointing any activated user's contact at its own
    mailbox, then "forgot password" there, would own that portal login."""
    jane = PortalUserFactory(portal_account=account, role=partner_role, email="jane@x.example")
    user = sync(jane, NEW)
    assert (user.email, user.pending_email) == ("jane@x.example", NEW)
    mail.outbox.clear()

    client.post("/p/acme/forgot-password/", {"email": NEW})

    assert [m for m in mail.outbox if m.to == [NEW]] == []
    # Whoever really holds the new address confirms it from the link it was sent.
    mail.outbox.clear()
    sync(jane, "jane@x.example")  # withdrawn ...
    sync(jane, NEW)  # ... and asked again: a fresh link
    assert client.post(confirmation_path(), {"password": PASSWORD}).status_code == 200
    assert User.objects.get(pk=jane.pk).email == NEW


def test_the_new_mailbox_alone_cannot_confirm_it(ada, sync, client):
    """Whoever pointed the contact at a mailbox of theirs holds the link, not the password:
    confirming needs both, and guesses at the password count as sign-in failures."""
    sync(ada, NEW)
    path = confirmation_path()

    nothing = client.post(path)
    wrong = client.post(path, {"password": "a-guess"})

    assert nothing.status_code == wrong.status_code == 400
    assert "not the current password of ada.admin@acme.example" in wrong.content.decode()
    assert User.objects.get(pk=ada.pk).email == "ada.admin@acme.example"
    for _ in range(4):
        client.post(path, {"password": "a-guess"})
    assert client.post(path, {"password": PASSWORD}).status_code == 429


def test_an_invited_user_who_never_activated_follows_at_once(account, partner_role, sync):
    from accounts.models import UserState

    ivy = PortalUserFactory(
        portal_account=account, role=partner_role, state=UserState.UNCONFIRMED, email="i@x.example"
    )
    user = sync(ivy, "ivy.roe@x.example")
    assert (user.email, user.pending_email) == ("ivy.roe@x.example", "")


def test_the_confirmation_link_is_redacted_from_logs(ada, sync):
    sync(ada, NEW)
    path = confirmation_path()
    secret = path.rstrip("/").rsplit("/", 1)[1]
    assert secret not in redact(f"GET {path} HTTP/1.1")


def test_the_contact_page_shows_the_change_waiting(ada, sync, admin_client):
    sync(ada, NEW)
    page = admin_client.get(f"/accounts/acme/contacts/{ada.contact.pk}/")
    assert f"Changing to {NEW} once that address confirms it" in page.content.decode()


def test_an_admin_sends_an_expired_confirmation_again_from_the_contact_card(
    ada, sync, admin_client, client, django_capture_on_commit_callbacks
):
    """The first link expired (or went astray): the contact card sends a new one, and only the
    new one works."""
    sync(ada, NEW)
    first = confirmation_path()
    card = admin_client.get(f"/accounts/acme/contacts/{ada.contact.pk}/").content.decode()
    assert "Resend confirmation" in card
    mail.outbox.clear()

    url = reverse("contact-portal-user", args=["acme", ada.contact.pk, "resend-email-confirmation"])
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, {"confirmed": "1"})

    assert response.status_code in (200, 302)
    second = confirmation_path()
    assert second != first
    assert client.post(first, {"password": PASSWORD}).status_code == 400
    assert client.post(second, {"password": PASSWORD}).status_code == 200
    assert User.objects.get(pk=ada.pk).email == NEW
    assert AuditEvent.objects.filter(action="resend_email_confirmation").exists()


def test_an_address_still_held_until_its_user_confirms_their_new_one_says_so(
    ada, sync, api_client, account, partner_role
):
    """The CRM moves Ada to a new address (waiting for her confirmation) and gives her old one
    to Bob: Bob's contact is refused for now, and the reason is the wait, not a clash to mend
    in the CRM."""
    sync(ada, NEW)
    bob = PortalUserFactory(portal_account=account, role=partner_role, name="Bob Stone")
    response = upsert(
        api_client,
        {"contact_id": bob.contact.contact_id, "name": "Bob Stone", "email": ada.email},
    )
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert f"still the sign-in email of the portal user {ada.name}" in error["message"]
    assert f"{NEW}, waits for them to confirm it" in error["message"]
    assert "Send Bob Stone's contact again once it is confirmed" in error["message"]
    assert User.objects.get(pk=bob.pk).email == bob.email


def test_an_address_waiting_for_its_users_confirmation_is_not_said_to_free_up(
    ada, api_client, account, partner_role
):
    """One batch moves Ada to a new address (it waits for her confirmation, and stays hers)
    and gives Bob the same one: Bob is told to change one of the two emails in the CRM, not to
    wait."""
    bob = PortalUserFactory(portal_account=account, role=partner_role, name="Bob Stone")
    response = upsert(
        api_client,
        {"contact_id": ada.contact.contact_id, "name": ada.name, "email": NEW},
        {"contact_id": bob.contact.contact_id, "name": "Bob Stone", "email": NEW},
    )
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert "Change one of the two emails in the CRM first" in error["message"]
    assert "waits for them to confirm" not in error["message"]
