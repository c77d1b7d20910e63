"""An address with a control character in a quoted local part ('"a\\x1cb"@example.com') passes
Django's validate_email, but the mail library writes \\x1c as a line break into the header: the
To or Reply-To header breaks, or the email is refused for ever ("embedded header"). Refused
wherever an address comes in."""

import pytest
from django.urls import reverse

from contacts.models import Contact
from mail.models import SenderIdentity

ODD = '"x\x1cX-Injected:yes\x1cy"@example.com'


def test_the_crm_sync_refuses_it(api_client, account):
    url = f"/api/v1/accounts/{account.slug}/contacts/upsert/"
    body = {"contacts": [{"contact_id": "003AAAAAAAAAAAAAAA1", "name": "Jo", "email": ODD}]}

    response = api_client.post(url, body, content_type="application/json")

    assert response.status_code == 400
    assert not Contact.objects.exists()


@pytest.mark.parametrize("field", ["from_email", "reply_to"])
def test_the_sender_form_refuses_it(admin_client, account, field):
    response = admin_client.post(reverse("sender-identity", args=[account.slug]), {field: ODD})

    assert response.status_code == 400
    assert not SenderIdentity.objects.exists()


def test_add_user_refuses_it(admin_client, account, employee_role):
    url = reverse("user-add", args=[account.slug])

    response = admin_client.post(url, {"name": "Jo", "email": ODD, "role": employee_role.pk})

    assert response.status_code == 400


def test_a_contact_already_holding_one_gets_no_portal_user_email():
    from accounts.lifecycle import email_checker, valid_email

    assert valid_email(ODD) == ""
    assert email_checker()(ODD) == ""
