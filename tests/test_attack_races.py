"""Two admins saving the same new thing at the same moment (PostgreSQL only, as in
tests/test_concurrent_actions.py): the first holds its transaction open until PostgreSQL reports
the second one waiting on it, so the interleaving is forced. Nobody gets a server error."""

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AccessPolicy
from mail.models import CustomEmail, SenderIdentity
from tests.conftest import console_sign_in
from tests.factories import StaffFactory
from tests.test_license_race import first_holds_the_seat_while_second_asks, outcome
from webhooks.models import Delivery, Endpoint

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def two_mssp_admins(mssp_admin):
    second = StaffFactory(kind=mssp_admin.kind, name="Max Admin", email="max@mssp.example")
    return console_sign_in(Client(), mssp_admin), console_sign_in(Client(), second)


def _posting(client, url, data):
    return lambda: client.post(url, data)


def _answers(first, second):
    assert first.error is None, outcome(first)
    assert second.error is None, outcome(second)
    return first.result, second.result


def test_two_admins_saving_the_first_sender_of_an_account_both_get_an_answer(
    account, two_mssp_admins
):
    url = reverse("sender-identity", args=[account.slug])
    first_client, second_client = two_mssp_admins
    first, second = first_holds_the_seat_while_second_asks(
        _posting(first_client, url, {"from_name": "Acme One", "from_email": "a@acme.example"}),
        _posting(second_client, url, {"from_name": "Acme Two", "from_email": "b@acme.example"}),
    )

    one, two = _answers(first, second)
    assert one.status_code == 302
    assert two.status_code in (302, 409), two.status_code
    assert SenderIdentity.objects.filter(portal_account=account).count() == 1


def test_two_admins_saving_the_first_policy_of_an_account_both_get_an_answer(
    account, two_mssp_admins
):
    url = reverse("access-policies", args=[account.slug])
    data = {"reminder_after_days": 3, "reminder_max": 2, "inactivity_warning_days": 14}
    first_client, second_client = two_mssp_admins
    first, second = first_holds_the_seat_while_second_asks(
        _posting(first_client, url, {**data, "invitation_days": 5}),
        _posting(second_client, url, {**data, "invitation_days": 6}),
    )

    one, two = _answers(first, second)
    assert (one.status_code, two.status_code) == (302, 302)
    assert AccessPolicy.objects.get(portal_account=account).invitation_days == 6


def test_two_admins_saving_the_first_wording_of_an_email_both_get_an_answer(
    account, two_mssp_admins
):
    url = reverse("custom-email", args=[account.slug, "login_link"])
    body = "Hi {name}, {link} ({expires})"
    first_client, second_client = two_mssp_admins
    first, second = first_holds_the_seat_while_second_asks(
        _posting(first_client, url, {"subject": "One", "body": body, "action": "save"}),
        _posting(second_client, url, {"subject": "Two", "body": body, "action": "save"}),
    )

    one, two = _answers(first, second)
    assert (one.status_code, two.status_code) == (302, 302)
    assert CustomEmail.objects.get(portal_account=account).subject == "Two"


def test_redeliver_twice_at_once_queues_one_redelivery(account, two_mssp_admins):
    endpoint = Endpoint.objects.create(
        portal_account=account, url="https://crm.acme.example/hooks", events=["user.disabled"]
    )
    delivery = Delivery.objects.create(
        portal_account=account,
        endpoint=endpoint,
        event_id="evt_1",
        event_type="user.disabled",
        payload={},
        status=Delivery.Status.FAILED,
    )
    url = reverse("webhook-redeliver", args=[account.slug, endpoint.pk, delivery.pk])
    first_client, second_client = two_mssp_admins
    first, second = first_holds_the_seat_while_second_asks(
        _posting(first_client, url, {}), _posting(second_client, url, {})
    )

    one, two = _answers(first, second)
    assert (one.status_code, two.status_code) == (302, 302)
    assert Delivery.objects.filter(redelivery_of=delivery).count() == 1


def test_two_admins_adding_the_same_endpoint_at_once_get_one_endpoint(account, two_mssp_admins):
    url = reverse("webhook-endpoints", args=[account.slug])
    data = {"url": "https://crm.acme.example/hooks", "events": ["user.disabled"], "active": "on"}
    first_client, second_client = two_mssp_admins
    first, second = first_holds_the_seat_while_second_asks(
        _posting(first_client, url, data), _posting(second_client, url, data)
    )

    one, two = _answers(first, second)
    assert one.status_code == 200
    assert two.status_code == 409, two.status_code
    assert "already sends to this URL" in two.content.decode()
    assert Endpoint.objects.filter(portal_account=account).count() == 1
