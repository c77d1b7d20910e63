"""What the confirm dialogs tell a new user: whom a bulk action is about, who loses the admin
seat, and which actions an unconfirmed user is offered."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import User, UserState
from tests.factories import PortalUserFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


def action_url(account, user, action):
    return reverse("user-action", args=[account.slug, user.pk, action])


def ask_bulk(client, account, action, users=(), **extra):
    data = {"action": action, "ids": [u.pk for u in users], **extra}
    return client.post(reverse("users-bulk", args=[account.slug]), data)


@pytest.fixture
def make(account, partner_role):
    return lambda **kw: PortalUserFactory(portal_account=account, role=partner_role, **kw)


# --- 2. a bulk confirm names the first few people ---


def test_bulk_confirm_names_the_first_three_and_counts_the_rest(admin_client, account, make):
    users = [make(name=f"Person {n:02d}") for n in range(25)]
    page = ask_bulk(admin_client, account, "disable", users).content.decode()
    assert "Disable 25 users?" in page
    assert "Person 00, Person 01, Person 02 and 22 more" in page
    assert "Person 03" not in page


def test_bulk_confirm_names_everyone_when_few(admin_client, account, make):
    ada, olga = make(name="Ada Larsen"), make(name="Olga Novak")
    both = ask_bulk(admin_client, account, "disable", [olga, ada]).content.decode()
    assert "Ada Larsen and Olga Novak" in both
    assert "Ada Larsen</p>" in ask_bulk(admin_client, account, "disable", [ada]).content.decode()


def test_bulk_confirm_on_all_matching_reads_at_most_three_names(admin_client, account, make):
    for n in range(30):
        make(name=f"Person {n:02d}")
    with CaptureQueriesContext(connection) as queries:
        response = ask_bulk(admin_client, account, "disable", all_matching="1", tab="enabled")
    assert "Person 00, Person 01, Person 02 and 27 more" in response.content.decode()
    # The names come from one bounded query, not from reading the selection.
    names = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith('SELECT "accounts_user"."name" AS "name" FROM')
    ]
    assert len(names) == 1
    assert names[0].endswith("LIMIT 3")


def test_bulk_with_nothing_ticked_still_answers_plainly(admin_client, account, make):
    make(name="Ada Larsen")
    response = ask_bulk(admin_client, account, "reinvite")
    assert response.status_code == 400
    assert "Select at least one user first." in response.content.decode()


# --- 3. make-admin names who loses the seat ---


def test_make_admin_confirm_names_the_current_admin(technician_client, account, make):
    make(name="Olga Novak", is_account_admin=True)
    ada = make(name="Ada Larsen")
    page = technician_client.get(action_url(account, ada, "make-admin")).content.decode()
    assert "Ada Larsen becomes the account admin" in page
    assert "Olga Novak loses the seat and keeps a normal portal login." in page


def test_make_admin_confirm_without_a_current_admin(technician_client, account, make):
    ada = make(name="Ada Larsen")
    page = technician_client.get(action_url(account, ada, "make-admin")).content.decode()
    assert "Ada Larsen becomes the account admin" in page
    assert "loses the seat" not in page


# --- 4. unconfirmed users and the admin seat; Disable on their row ---


def test_unconfirmed_row_offers_disable_but_not_make_admin(admin_client, account, make):
    grace = make(name="Grace Hopper", state=UserState.UNCONFIRMED)
    page = admin_client.get(reverse("users", args=[account.slug]) + "?tab=unconfirmed")
    page = page.content.decode()
    assert action_url(account, grace, "disable") in page
    assert action_url(account, grace, "reinvite") in page
    assert action_url(account, grace, "make-admin") not in page


def test_making_an_unconfirmed_user_admin_is_refused(technician_client, account, make):
    holder = make(name="Olga Novak", is_account_admin=True)
    grace = make(name="Grace Hopper", state=UserState.UNCONFIRMED)
    response = technician_client.post(action_url(account, grace, "make-admin"))
    assert response.status_code == 409
    assert "has not accepted their invitation yet" in response.content.decode()
    assert not User.objects.get(pk=grace.pk).is_account_admin
    assert User.objects.get(pk=holder.pk).is_account_admin


def test_disabling_an_unconfirmed_user_from_their_row(admin_client, account, make):
    grace = make(name="Grace Hopper", state=UserState.UNCONFIRMED)
    assert admin_client.post(action_url(account, grace, "disable")).status_code == 302
    assert User.objects.get(pk=grace.pk).state == UserState.DISABLED


# --- 5. Reactivate and Reinvite on the contact's Portal user card ask first ---


def card_url(user, action):
    return reverse("contact-portal-user", args=[user.portal_account.slug, user.contact_id, action])


@pytest.mark.parametrize(
    ("state", "action", "label"),
    [(UserState.DISABLED, "enable", "Reactivate"), (UserState.UNCONFIRMED, "reinvite", "Reinvite")],
)
def test_the_card_asks_before_reactivating_or_reinviting(
    admin_client, account, make, state, action, label
):
    dan = make(name="Dan Person", state=state)
    contact_page = reverse("contact", args=[account.slug, dan.contact_id])
    page = admin_client.get(contact_page).content.decode()
    url = card_url(dan, action)
    # A link that opens the dialog (a page of its own without JavaScript), not a form that acts.
    assert f'href="{url}" hx-get="{url}" hx-target="#dialog-slot">{label}…</a>' in page
    assert f'<form method="post" action="{url}"' not in page

    for headers in ({}, HTMX):
        asked = admin_client.get(url, **headers)
        assert asked.status_code == 200
        body = asked.content.decode()
        assert f"{label} Dan Person?" in body
        assert f'action="{url}"' in body
    assert User.objects.get(pk=dan.pk).state == state

    done = admin_client.post(url, {"confirmed": "1"}, **HTMX)
    assert done.status_code == 200
    assert re.search(r"(reactivated for|sent again to) Dan Person\.", done.content.decode())
    expected = UserState.ENABLED if action == "enable" else UserState.UNCONFIRMED
    assert User.objects.get(pk=dan.pk).state == expected
