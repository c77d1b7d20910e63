"""Two admins enabling the same contacts (or the last seats) at the same moment from the
contacts page: nobody gets two users, no seat is given twice, and the loser reads a plain
outcome per contact instead of an error page.

PostgreSQL only, as tests/test_license_race.py: each request runs on its own thread and
connection; the first holds its transaction open until the second is seen waiting on its lock."""

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent, OutboxEmail, User, UserKind
from tests.conftest import console_sign_in
from tests.factories import ContactFactory
from tests.test_contacts_bulk_enable import outcome_rows
from tests.test_license_race import first_holds_the_seat_while_second_asks, outcome

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def enabling(client, account, contacts, role):
    url = reverse("contacts-enable", args=[account.slug])
    data = {"ids": [c.pk for c in contacts], "role": role.pk, "confirmed": "1"}
    return lambda: client.post(url, data)


@pytest.fixture
def clients(mssp_admin, technician):
    return console_sign_in(Client(), mssp_admin), console_sign_in(Client(), technician)


def test_both_admins_enable_the_same_contacts(account, partner_role, clients):
    contacts = [ContactFactory(portal_account=account, name=n) for n in ("Ada Larsen", "Bo Berg")]
    first, second = first_holds_the_seat_while_second_asks(
        enabling(clients[0], account, contacts, partner_role),
        enabling(clients[1], account, contacts, partner_role),
    )
    assert first.result.status_code == 200, outcome(first)
    assert second.result.status_code == 200, outcome(second)
    assert set(outcome_rows(first.result).values()) == {("Created", "Invited")}
    assert set(outcome_rows(second.result).values()) == {("Skipped", "Already a portal user.")}
    assert User.objects.filter(contact__in=contacts).count() == 2
    assert AuditEvent.objects.filter(action="invite").count() == 2
    assert OutboxEmail.objects.count() == 2


def test_two_admins_race_for_the_last_seat(account, customer_role, clients):
    account.customer_licenses = 1
    account.save(update_fields=["customer_licenses"])
    ada = ContactFactory(portal_account=account, name="Ada Larsen")
    bo = ContactFactory(portal_account=account, name="Bo Berg")
    first, second = first_holds_the_seat_while_second_asks(
        enabling(clients[0], account, [ada], customer_role),
        enabling(clients[1], account, [bo], customer_role),
    )
    assert first.result.status_code == 200, outcome(first)
    assert second.result.status_code == 409, outcome(second)
    assert outcome_rows(second.result) == {
        "Bo Berg": ("Failed", "No Customer licenses left: 1 of 1 in use.")
    }
    assert list(User.objects.filter(kind=UserKind.PORTAL).values_list("contact", flat=True)) == [
        ada.pk
    ]
    assert OutboxEmail.objects.count() == 1
