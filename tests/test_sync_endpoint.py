"""The contact sync endpoint a CRM api_client calls (api/sync_views.py, contacts.sync): upsert,
delete, restore and merge batches, all or nothing, idempotent, one account per token."""

import json
import re
import threading
from unittest import mock

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import lifecycle, tokens
from accounts.errors import LifecycleError
from accounts.models import AuditEvent, EmailKind, OutboxEmail, TokenPurpose, User, UserState
from api import api_tokens
from contacts import mirror
from contacts.models import Contact
from contacts.salesforce_ids import to_18
from contacts.sync_items import Found
from mail import delivery
from tests.conftest import api_client_for
from tests.factories import PASSWORD, ContactFactory, PortalUserFactory
from tests.test_license_race import (
    TIMEOUT,
    Racer,
    first_holds_the_seat_while_second_asks,
    outcome,
    wait_until_blocked,
)

SF15 = "0035g00000AbCdE"
SF18 = to_18(SF15)
CID = "003AAAAAAAAAAAAAAA1"
BLOCKED = "Your account may be temporarily disabled, please contact the administrator."


def url(operation, slug="acme"):
    return reverse(f"api-sync-{operation}", args=[slug])


def send(client, operation, body, slug="acme"):
    return client.post(url(operation, slug), json.dumps(body), content_type="application/json")


def upsert(client, *contacts, slug="acme"):
    return send(client, "upsert", {"contacts": list(contacts)}, slug)


def refs(*refs):
    return {"contacts": list(refs)}


def mirror_state():
    """Everything a refused or repeated batch must leave as it was."""
    return (
        sorted(Contact.objects.values_list()),
        sorted(User.objects.values_list("pk", "contact_id", "name", "email", "state")),
        AuditEvent.objects.count(),
    )


def fresh(obj):
    return type(obj).objects.get(pk=obj.pk)


@pytest.fixture
def jane(account, partner_role):
    return PortalUserFactory(
        portal_account=account,
        role=partner_role,
        name="Jane Doe",
        email="jane@example.com",
        contact__contact_id=CID,
        contact__salesforce_id=SF18,
    )


def signs_in(user):
    client = Client()
    page = client.post("/p/acme/login/", {"email": user.email, "password": PASSWORD})
    return client.get("/p/acme/").status_code == 200, page.content.decode()


# --- upsert ---


def batch(n, start=0, **extra):
    return [
        {
            "contact_id": f"003BATCH{i:011d}",
            "salesforce_id": f"0035g{i:010d}",
            "name": f"Contact {i}",
            "email": f"contact{i}@crm.example",
            "crm_account_name": "Wayne Enterprises",
            **extra,
        }
        for i in range(start, start + n)
    ]


def test_upsert_creates_then_the_same_batch_changes_nothing(api_client, account):
    items = batch(5)
    response = upsert(api_client, *items)
    assert response.status_code == 200
    body = response.json()
    assert (body["created"], body["updated"], body["unchanged"]) == (5, 0, 0)
    assert body["results"][0] == {
        "index": 0,
        "contact_id": "003BATCH00000000000",
        "salesforce_id": to_18("0035g0000000000"),
        "outcome": "created",
    }
    contact = Contact.objects.get(contact_id="003BATCH00000000003")
    assert (contact.name, contact.email, contact.source) == (
        "Contact 3",
        "contact3@crm.example",
        "crm",
    )
    event = AuditEvent.objects.get(action="sync_contacts")
    assert event.actor_label == "API token 'CRM connector'"
    assert event.after == {"created": 5, "updated": 0, "unchanged": 0}

    before = mirror_state()
    again = upsert(api_client, *items).json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 5)
    assert {r["outcome"] for r in again["results"]} == {"unchanged"}
    assert mirror_state() == before  # no updated_at moved, no audit row


def test_upsert_by_contact_id_updates_and_fills_the_salesforce_id(api_client, account):
    contact = ContactFactory(portal_account=account, contact_id=CID, salesforce_id=None)
    body = upsert(api_client, {"contact_id": CID, "salesforce_id": SF15, "name": "New Name"}).json()
    assert body["results"][0]["outcome"] == "updated"
    assert body["results"][0]["salesforce_id"] == SF18
    contact = fresh(contact)
    assert (contact.name, contact.salesforce_id) == ("New Name", SF18)


@pytest.mark.parametrize("salesforce_id", [SF15, SF18, SF18[:15] + SF18[15:].lower()])
def test_upsert_by_salesforce_id_in_15_or_18_characters(api_client, account, salesforce_id):
    contact = ContactFactory(portal_account=account, salesforce_id=SF18, email="old@x.example")
    body = upsert(api_client, {"salesforce_id": salesforce_id, "name": "Renamed"}).json()
    assert body["updated"] == 1
    contact = fresh(contact)
    assert contact.name == "Renamed"
    assert contact.email == "old@x.example"  # a field left out is left as it is


def test_upsert_matches_a_console_contact_by_email(api_client, account, partner_role):
    user = PortalUserFactory(
        portal_account=account, role=partner_role, email="pat@acme.example", name="Pat"
    )
    Contact.objects.filter(pk=user.contact_id).update(source=Contact.Source.CONSOLE)
    item = {
        "contact_id": CID,
        "salesforce_id": SF15,
        "name": "Pat Smith",
        "email": "PAT@acme.example",
    }
    body = upsert(api_client, item).json()
    assert body["updated"] == 1
    assert body["created"] == 0
    contact = fresh(user.contact)
    assert (contact.contact_id, contact.salesforce_id, contact.source) == (CID, SF18, "crm")
    assert fresh(user).name == "Pat Smith"  # the user follows their contact
    # From now on the CRM's ids find it: the same item again is unchanged.
    assert upsert(api_client, item).json()["unchanged"] == 1


def test_15_character_ids_are_case_sensitive(api_client, account):
    ContactFactory(portal_account=account, salesforce_id=SF18)
    body = upsert(api_client, {"salesforce_id": SF15.lower(), "name": "Another record"}).json()
    assert body["created"] == 1


def test_a_crm_contact_is_not_matched_by_email(api_client, account):
    ContactFactory(portal_account=account, email="same@acme.example", source=Contact.Source.CRM)
    body = upsert(api_client, {"contact_id": CID, "name": "N", "email": "same@acme.example"}).json()
    assert body["created"] == 1
    assert Contact.objects.filter(email="same@acme.example").count() == 2


def test_a_new_contact_without_contact_id_gets_one(api_client):
    body = upsert(api_client, {"salesforce_id": SF15, "name": "Sam"}).json()
    contact_id = body["results"][0]["contact_id"]
    assert len(contact_id) == 19
    assert Contact.objects.get(salesforce_id=SF18).contact_id == contact_id


def test_the_users_name_follows_the_contact_and_a_new_email_waits_for_confirmation(
    api_client, jane
):
    """Jane has a password: "forgot password" at an address a sync token chose would hand her
    login over, so the new address waits until it confirms (tests/test_email_change_hold.py)."""
    body = upsert(
        api_client, {"contact_id": CID, "name": "Jane Roe", "email": "jane.roe@x.example"}
    )
    assert body.status_code == 200
    user = fresh(jane)
    assert (user.name, user.email, user.pending_email) == (
        "Jane Roe",
        "jane@example.com",
        "jane.roe@x.example",
    )
    event = AuditEvent.objects.get(action="user_follows_contact")
    assert event.subject_user == jane
    assert event.before == {"name": "Jane Doe", "email": "jane@example.com"}
    assert signs_in(user)[0]


def test_an_email_another_user_has_is_an_item_error(api_client, jane, account, partner_role):
    PortalUserFactory(portal_account=account, role=partner_role, email="taken@x.example")
    before = mirror_state()
    response = upsert(api_client, {"contact_id": CID, "name": "Jane", "email": "taken@x.example"})
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["index"] == 0
    assert error["field"] == "email"
    assert "taken@x.example is already used by the portal user" in error["message"]
    assert mirror_state() == before


def test_upserting_a_deleted_contact_updates_it_but_keeps_it_deleted(api_client, jane):
    Contact.objects.filter(pk=jane.contact_id).update(deleted_at="2026-01-01T00:00Z")
    body = upsert(api_client, {"contact_id": CID, "name": "Jane Renamed"}).json()
    assert body["updated"] == 1
    contact = fresh(jane.contact)
    assert contact.name == "Jane Renamed"
    assert contact.deleted_at is not None


def test_one_bad_item_and_nothing_is_applied(api_client, jane):
    before = mirror_state()
    items = [
        *batch(3),
        {"contact_id": CID, "name": "Jane Changed"},
        {"contact_id": "short", "name": "Bad Id"},
        {"salesforce_id": "0035g00000AbCdE123", "name": "Bad checksum"},
        {"contact_id": "003BATCH00000000001", "name": ""},
        {"salesforce_id": SF15, "name": "No", "email": "not-an-email"},
        {"name": "No ids"},
        {"contact_id": "003BATCH00000000002", "name": "Twice"},
        {"contact_id": CID, "salesforce_id": to_18("0035g0000000001"), "name": "Mixed"},
        "not an object",
        {"contact_id": "003BATCH00000000009", "name": "X", "nmae": "typo"},
        {"contact_id": "003BATCH00000000010", "name": 5},
    ]
    response = upsert(api_client, *items)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "Nothing was applied: 10 items are invalid."
    fields = {error["index"]: error["field"] for error in body["errors"]}
    assert fields == {
        4: "contact_id",
        5: "salesforce_id",
        6: "name",
        7: "email",
        8: "contact_id",
        9: "contact_id",
        10: "salesforce_id",
        11: None,
        12: "nmae",
        13: "name",
    }
    messages = {error["index"]: error["message"] for error in body["errors"]}
    assert "Item 2 names this contact already" in messages[9]
    assert "expected 19 letters and digits" in messages[4]
    assert mirror_state() == before


def test_ids_naming_two_contacts_are_an_error(api_client, account, jane):
    other = ContactFactory(portal_account=account, salesforce_id=to_18("0035g0000000001"))
    response = upsert(
        api_client, {"contact_id": other.contact_id, "salesforce_id": SF15, "name": "X"}
    )
    assert response.status_code == 400
    assert "whose Salesforce id is" in response.json()["errors"][0]["message"]


def test_size_limit(api_client):
    response = upsert(api_client, *batch(1001))
    assert response.status_code == 400
    assert "at most 1000 items" in response.json()["error"]
    assert not Contact.objects.exists()


def test_a_500_item_batch_takes_a_few_queries(api_client, account, django_assert_max_num_queries):
    # SQLite cuts a bulk insert into statements of at most 999 values: 6 here, 1 on PostgreSQL.
    inserts = 6 if connection.vendor == "sqlite" else 1
    with django_assert_max_num_queries(8 + inserts):
        assert upsert(api_client, *batch(500)).json()["created"] == 500
    changed = batch(500, crm_account_name="Stark Industries")
    with django_assert_max_num_queries(10):
        assert upsert(api_client, *changed).json()["updated"] == 500
    with django_assert_max_num_queries(6):
        assert upsert(api_client, *changed).json()["unchanged"] == 500


@pytest.mark.parametrize("field", ["name", "email", "crm_account_name"])
@pytest.mark.parametrize(
    "character", [chr(0xD800), chr(0xDFFF), "\x00"], ids=["high", "low", "nul"]
)
def test_text_the_database_cannot_store_is_an_item_error(api_client, jane, field, character):
    # A lone surrogate (JSON's "\ud800") is no character UTF-8 can encode, and PostgreSQL
    # stores no NUL: both made the database fail, a 500.
    before = mirror_state()
    value = f"jane{character}@example.com" if field == "email" else f"a{character}b"
    response = upsert(api_client, {"contact_id": CID, "name": "Jane Doe", field: value})
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert (error["index"], error["field"]) == (0, field)
    assert "cannot be stored" in error["message"]
    assert mirror_state() == before


def console_contact(account, **fields):
    return ContactFactory(
        portal_account=account,
        source=Contact.Source.CONSOLE,
        name="Jo",
        email="jo@x.example",
        **fields,
    )


def outcomes(response):
    return [result["outcome"] for result in response.json()["results"]]


def test_a_console_contact_is_adopted_by_the_first_item_of_a_batch_only(api_client, account):
    console = console_contact(account)
    items = [
        {"contact_id": CID, "name": "Jo", "email": "jo@x.example"},
        {"contact_id": "003BBBBBBBBBBBBBBB1", "name": "Jo (dup)", "email": "jo@x.example"},
    ]
    response = upsert(api_client, *items)
    assert response.status_code == 200, response.json()
    assert outcomes(response) == ["updated", "created"]
    adopted = fresh(console)
    assert (adopted.contact_id, adopted.source) == (CID, Contact.Source.CRM)
    created = Contact.objects.get(contact_id="003BBBBBBBBBBBBBBB1")
    assert (created.email, created.source) == ("jo@x.example", Contact.Source.CRM)
    before = mirror_state()
    assert outcomes(upsert(api_client, *items)) == ["unchanged", "unchanged"]
    assert mirror_state() == before


def test_a_console_contact_named_by_its_id_is_not_adopted_by_another_item(api_client, account):
    console = console_contact(account)
    items = [
        {"contact_id": "003BBBBBBBBBBBBBBB1", "name": "Jo (CRM)", "email": "jo@x.example"},
        {"contact_id": console.contact_id, "name": "Jo", "email": "jo@x.example"},
    ]
    response = upsert(api_client, *items)
    assert response.status_code == 200, response.json()
    assert outcomes(response) == ["created", "unchanged"]


def test_a_deleted_console_contact_is_not_adopted(api_client, account):
    deleted = console_contact(account, deleted_at=timezone.now())
    before = Contact.objects.filter(pk=deleted.pk).values().get()
    response = upsert(api_client, {"contact_id": CID, "name": "Jo", "email": "jo@x.example"})
    assert response.status_code == 200
    assert outcomes(response) == ["created"]
    assert Contact.objects.get(contact_id=CID).deleted_at is None
    assert Contact.objects.filter(pk=deleted.pk).values().get() == before


def test_a_live_console_contact_is_adopted_next_to_a_deleted_one(api_client, account):
    console_contact(account, deleted_at=timezone.now())
    live = console_contact(account)
    response = upsert(api_client, {"contact_id": CID, "name": "Jo", "email": "jo@x.example"})
    assert outcomes(response) == ["updated"]
    assert fresh(live).contact_id == CID


# --- what an email change or a deletion does to mail and links on their way ---


def pending(user):
    rows = OutboxEmail.objects.filter(user=user, status=OutboxEmail.Status.PENDING)
    return list(rows.order_by("pk").values_list("kind", "to_email"))


def sent_link(row):
    """Send an outbox row as the worker does; the portal path of the link its email carries."""
    delivery.deliver(row.pk)
    return re.search(r"https?://[^/\s]+(/p/\S+/)", mail.outbox[-1].body).group(1)


@pytest.fixture
def invited(account, partner_role, technician):
    """An unconfirmed user with their invitation pending, on the CRM contact CID."""
    contact = ContactFactory(
        portal_account=account, contact_id=CID, name="Ivy Green", email="ivy@old.example"
    )
    return lifecycle.invite(
        account, user_type="partner", role=partner_role, by=technician, contact=contact
    )


def new_email(client, email):
    response = upsert(client, {"contact_id": CID, "name": "Ivy Green", "email": email})
    assert response.status_code == 200, response.json()


def test_an_email_change_waiting_for_confirmation_leaves_the_old_addresss_mail_and_links(
    api_client, jane
):
    magic = reverse("portal-magic-link", args=["acme", tokens.issue(jane, TokenPurpose.MAGIC_LINK)])
    lifecycle.send_login_email(jane, by=None)

    response = upsert(
        api_client, {"contact_id": CID, "name": "Jane Doe", "email": "jane@new.example"}
    )

    assert response.status_code == 200
    assert (EmailKind.LOGIN_LINK, "jane@example.com") in pending(jane)
    assert (EmailKind.EMAIL_CHANGE_CONFIRM, "jane@new.example") in pending(jane)
    assert Client().get(magic).status_code == 200
    assert (
        "stays until jane@new.example confirms it"
        in AuditEvent.objects.get(action="user_follows_contact").detail
    )


def test_a_name_change_leaves_the_mail_and_links_alone(api_client, jane):
    magic = reverse("portal-magic-link", args=["acme", tokens.issue(jane, TokenPurpose.MAGIC_LINK)])
    lifecycle.send_login_email(jane, by=None)
    upsert(api_client, {"contact_id": CID, "name": "Jane Roe", "email": "jane@example.com"})
    assert pending(jane) == [(EmailKind.LOGIN_LINK, "jane@example.com")]
    assert Client().get(magic).status_code == 200


def test_a_pending_invitation_goes_to_the_new_address_instead(api_client, invited):
    new_email(api_client, "ivy@new.example")

    rows = list(OutboxEmail.objects.filter(user=invited).order_by("pk"))
    assert [(row.kind, row.to_email, row.status) for row in rows] == [
        (EmailKind.INVITATION, "ivy@old.example", OutboxEmail.Status.CANCELLED),
        (EmailKind.INVITATION, "ivy@new.example", OutboxEmail.Status.PENDING),
    ]
    link = sent_link(rows[1])
    assert mail.outbox[-1].to == ["ivy@new.example"]
    assert "Theo Tech has invited you" in mail.outbox[-1].body  # the same words as before
    assert Client().get(link).status_code == 200
    event = AuditEvent.objects.get(action="user_follows_contact")
    assert event.after["email_change"]["invitation_sent_to"] == "ivy@new.example"
    assert "invitation sent again to ivy@new.example" in event.detail


def test_an_invitation_sent_again_credits_no_one_when_its_inviter_is_gone(
    api_client, invited, technician
):
    """The audit event keeps the id of the technician who invited (no key), but the new
    outbox row's queued_by has a key: it must not name someone deleted since."""
    technician.delete()
    new_email(api_client, "ivy@new.example")

    row = OutboxEmail.objects.get(user=invited, status=OutboxEmail.Status.PENDING)
    assert (row.to_email, row.queued_by_id) == ("ivy@new.example", None)
    connection.check_constraints()  # what the commit would check


def test_a_delivered_invitations_link_dies_and_the_new_address_gets_one(api_client, invited):
    old_link = sent_link(OutboxEmail.objects.get(user=invited))
    assert mail.outbox[-1].to == ["ivy@old.example"]

    new_email(api_client, "ivy@new.example")

    assert Client().get(old_link).status_code == 400
    assert pending(invited) == [(EmailKind.INVITATION, "ivy@new.example")]
    row = OutboxEmail.objects.get(user=invited, status=OutboxEmail.Status.PENDING)
    assert Client().get(sent_link(row)).status_code == 200


def test_no_invitation_is_sent_again_to_a_user_whose_contact_is_deleted(api_client, invited):
    Contact.objects.filter(pk=invited.contact_id).update(deleted_at=timezone.now())
    new_email(api_client, "ivy@new.example")
    assert pending(invited) == []


def test_deleting_a_contact_stops_its_users_mail_and_links(api_client, invited):
    # An invitation still in the outbox, and the link of one already sent.
    secret = tokens.issue(invited, TokenPurpose.ACTIVATION)
    activate = reverse("portal-activate", args=["acme", secret])

    response = send(api_client, "delete", refs({"contact_id": CID}))

    assert response.status_code == 200
    assert pending(invited) == []
    assert OutboxEmail.objects.get(user=invited).last_error == "The user's contact was deleted."
    password = "a-new-password-for-ivy"
    answer = Client().post(activate, {"new_password1": password, "new_password2": password})
    assert answer.status_code == 400  # the orphan cannot activate
    assert fresh(invited).state == UserState.UNCONFIRMED
    event = AuditEvent.objects.get(action="delete_contact")
    assert event.after["user"] == {"emails_cancelled": 1, "links_revoked": 1}


# --- the request itself ---


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        ("{not json", "application/json", "The body is not valid JSON"),
        ("[]", "application/json", "The body must be a JSON object."),
        ("contacts=1", "application/x-www-form-urlencoded", "Content-Type: application/json"),
        ('{"contacts": {}}', "application/json", "must have a 'contacts' list"),
    ],
)
def test_a_bad_body_is_400_with_a_plain_message(api_client, body, content_type, message):
    response = api_client.post(url("upsert"), body, content_type=content_type)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_only_post(api_client):
    response = api_client.get(url("upsert"))
    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_no_or_revoked_token_is_401(api_token, account, mssp_admin):
    assert upsert(Client(), *batch(1)).status_code == 401
    api_tokens.revoke_token(api_token, by=mssp_admin)
    response = upsert(api_client_for(api_token.secret), *batch(1))
    assert response.status_code == 401
    assert not Contact.objects.exists()


@pytest.mark.parametrize("operation", ["upsert", "delete", "restore", "merge"])
def test_another_accounts_token_is_404_and_changes_nothing(
    account, other_account, jane, mssp_admin, operation
):
    _, secret = api_tokens.create_token(other_account, "Globex sync", by=mssp_admin)
    before = mirror_state()
    body = {
        "upsert": {"contacts": [{"contact_id": CID, "name": "Hijacked"}]},
        "delete": refs({"contact_id": CID}),
        "restore": refs({"contact_id": CID}),
        "merge": {"merges": [{"winner": {"contact_id": CID}, "loser": {"salesforce_id": SF15}}]},
    }[operation]
    response = send(api_client_for(secret), operation, body, slug="acme")
    assert response.status_code == 404
    assert mirror_state() == before


def test_a_token_reaches_only_its_own_accounts_contacts(account, other_account, jane, mssp_admin):
    """Globex's token on its own slug never finds Acme's contact by Acme's ids."""
    _, secret = api_tokens.create_token(other_account, "Globex sync", by=mssp_admin)
    response = send(api_client_for(secret), "delete", refs({"contact_id": CID}), slug="globex")
    assert response.status_code == 400
    assert fresh(jane.contact).deleted_at is None
    created = upsert(
        api_client_for(secret), {"contact_id": CID, "name": "Globex's own"}, slug="globex"
    )
    assert created.json()["created"] == 1
    assert fresh(jane.contact).name == "Jane Doe"


# --- delete and restore ---


def test_delete_locks_the_user_out_and_restore_lets_them_back(api_client, jane):
    response = send(api_client, "delete", refs({"salesforce_id": SF15}))
    assert response.status_code == 200
    body = response.json()
    assert (body["deleted"], body["unchanged"]) == (1, 0)
    assert body["results"][0]["outcome"] == "deleted"
    can, page = signs_in(jane)
    assert not can
    assert BLOCKED in page
    assert AuditEvent.objects.get(action="delete_contact").subject_user == jane
    assert AuditEvent.objects.filter(action="sync_delete_contacts").count() == 1

    before = mirror_state()
    assert send(api_client, "delete", refs({"contact_id": CID})).json()["unchanged"] == 1
    assert mirror_state() == before

    body = send(api_client, "restore", refs({"contact_id": CID})).json()
    assert (body["restored"], body["unchanged"]) == (1, 0)
    assert signs_in(jane)[0]
    assert send(api_client, "restore", refs({"contact_id": CID})).json()["unchanged"] == 1


def test_an_unknown_contact_fails_the_whole_delete(api_client, jane):
    before = mirror_state()
    response = send(
        api_client, "delete", refs({"contact_id": CID}, {"contact_id": "003UNKNOWN000000000"})
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "Nothing was applied: 1 item is invalid."
    assert body["errors"] == [
        {
            "index": 1,
            "field": "contact_id",
            "message": (
                "No contact with the contact_id '003UNKNOWN000000000' in this portal account."
            ),
        }
    ]
    assert mirror_state() == before


def test_a_merged_away_contact_cannot_be_restored(api_client, jane, account):
    winner = ContactFactory(portal_account=account)
    send(
        api_client,
        "merge",
        {"merges": [{"winner": {"contact_id": winner.contact_id}, "loser": {"contact_id": CID}}]},
    )
    response = send(api_client, "restore", refs({"contact_id": CID}))
    assert response.status_code == 400
    assert "cannot be restored while that merge stands" in response.json()["errors"][0]["message"]


# --- merge ---


def merge(client, winner, loser):
    return send(client, "merge", {"merges": [{"winner": winner, "loser": loser}]})


def test_the_winner_takes_the_losers_user(api_client, jane, account):
    winner = ContactFactory(portal_account=account, name="Jane D.", email="jd@crm.example")
    response = merge(api_client, {"contact_id": winner.contact_id}, {"salesforce_id": SF15})
    assert response.status_code == 200
    body = response.json()
    assert body["merged"] == 1
    assert body["results"][0]["contact_id"] == winner.contact_id
    assert body["results"][0]["loser"] == {"contact_id": CID, "salesforce_id": SF18}
    loser = fresh(jane.contact)
    assert loser.deleted_at is not None
    assert loser.merged_into == winner
    user = fresh(jane)
    # Her new contact's address waits for confirmation: she has a password.
    assert (user.contact, user.email, user.pending_email) == (
        winner,
        "jane@example.com",
        "jd@crm.example",
    )
    assert signs_in(user)[0]
    assert AuditEvent.objects.get(action="merge_contacts").subject_user == jane

    before = mirror_state()
    again = merge(api_client, {"contact_id": winner.contact_id}, {"salesforce_id": SF15}).json()
    assert (again["merged"], again["unchanged"]) == (0, 1)
    assert mirror_state() == before


def test_the_winner_keeps_its_user(api_client, jane, account):
    loser = ContactFactory(portal_account=account)
    body = merge(api_client, {"contact_id": CID}, {"contact_id": loser.contact_id}).json()
    assert body["merged"] == 1
    assert fresh(jane).contact_id == jane.contact_id
    assert fresh(loser).merged_into_id == jane.contact_id


def test_both_with_users_is_refused_and_nothing_changes(api_client, jane, account, partner_role):
    john = PortalUserFactory(
        portal_account=account, role=partner_role, name="John Roe", email="john@example.com"
    )
    lone = ContactFactory(portal_account=account)
    before = mirror_state()
    response = send(
        api_client,
        "merge",
        {
            "merges": [
                {"winner": {"contact_id": CID}, "loser": {"contact_id": lone.contact_id}},
                {"winner": {"contact_id": CID}, "loser": {"contact_id": john.contact.contact_id}},
            ]
        },
    )
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["index"] == 1
    assert error["message"].startswith(
        "Both contacts have portal users (Jane Doe <jane@example.com> and John Roe "
        "<john@example.com>)"
    )
    assert mirror_state() == before  # the first, valid merge was not applied either


def test_merge_item_errors(api_client, jane, account):
    response = send(
        api_client,
        "merge",
        {
            "merges": [
                {"winner": {"contact_id": CID}, "loser": {"salesforce_id": SF15}},
                {"winner": {"contact_id": CID}},
                {"winner": {"contact_id": CID}, "loser": {"contact_id": "003UNKNOWN000000000"}},
                [],
            ]
        },
    )
    assert response.status_code == 400
    errors = {error["index"]: error for error in response.json()["errors"]}
    assert "cannot be merged into itself" in errors[0]["message"]
    assert errors[1]["field"] == "loser"
    assert errors[2]["field"] == "loser.contact_id"
    assert errors[3]["field"] is None


def test_replaying_a_chain_of_merges_changes_nothing(api_client, jane, account):
    b, c = ContactFactory(portal_account=account), ContactFactory(portal_account=account)
    body = {
        "merges": [
            {"winner": {"contact_id": b.contact_id}, "loser": {"contact_id": CID}},
            {"winner": {"contact_id": c.contact_id}, "loser": {"contact_id": b.contact_id}},
        ]
    }
    assert send(api_client, "merge", body).json()["merged"] == 2
    assert fresh(jane.contact).merged_into == c  # sent on to the last winner
    assert fresh(jane).contact == c

    before = mirror_state()
    again = send(api_client, "merge", body)
    assert again.status_code == 200, again.json()
    assert (again.json()["merged"], again.json()["unchanged"]) == (0, 2)
    assert outcomes(again) == ["unchanged", "unchanged"]
    assert mirror_state() == before


def test_a_merge_moving_an_invited_user_to_a_new_email_stops_the_old_addresss_invitation(
    api_client, account, partner_role
):
    ivy = PortalUserFactory(
        portal_account=account,
        role=partner_role,
        state=UserState.UNCONFIRMED,
        email="ivy@old.example",
        contact__contact_id=CID,
    )
    invitation = reverse(
        "portal-activate", args=["acme", tokens.issue(ivy, TokenPurpose.ACTIVATION)]
    )
    winner = ContactFactory(portal_account=account, email="ivy@crm.example")
    assert (
        merge(api_client, {"contact_id": winner.contact_id}, {"contact_id": CID}).status_code == 200
    )
    assert fresh(ivy).email == "ivy@crm.example"  # never activated: no password to hand over
    assert Client().get(invitation).status_code != 200
    event = AuditEvent.objects.get(action="merge_contacts")
    assert event.after["email_change"]["links_revoked"] == 1
    assert event.after["email_change"]["invitation_sent_to"] == "ivy@crm.example"


# --- races: PostgreSQL only (SQLite lets one writer in at a time, so nothing can race) ---


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_connectors_creating_the_same_contacts_create_them_once(account, api_token):
    items = batch(50)
    first, second = first_holds_the_seat_while_second_asks(
        lambda: upsert(api_client_for(api_token.secret), *items),
        lambda: upsert(api_client_for(api_token.secret), *items),
    )
    answers = [racer.result for racer in (first, second)]
    assert [a.status_code for a in answers] == [200, 200], [outcome(r) for r in (first, second)]
    assert answers[0].json()["created"] == 50
    assert answers[1].json()["unchanged"] == 50  # ran again once the first had committed
    assert Contact.objects.count() == 50


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_merges_into_one_winner_cannot_both_move_a_user(account, partner_role, technician):
    winner = ContactFactory(portal_account=account, name="Winner")
    ann, bob = (
        PortalUserFactory(portal_account=account, role=partner_role, name=name)
        for name in ("Ann", "Bob")
    )
    first, second = first_holds_the_seat_while_second_asks(
        lambda: mirror.merge_contacts(winner, ann.contact, by=technician),
        lambda: mirror.merge_contacts(winner, bob.contact, by=technician),
    )
    assert first.error is None, outcome(first)
    assert isinstance(second.error, LifecycleError), outcome(second)
    assert "Both contacts have portal users" in str(second.error)
    assert User.objects.filter(contact=winner).get() == ann
    assert fresh(bob.contact).deleted_at is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_orphans_cannot_both_move_to_one_contact(account, partner_role, technician):
    target = ContactFactory(portal_account=account, crm_account_name="Acme Corp")
    ann, bob = (
        PortalUserFactory(
            portal_account=account, role=partner_role, name=name, contact__deleted_at=timezone.now()
        )
        for name in ("Ann", "Bob")
    )
    first, second = first_holds_the_seat_while_second_asks(
        lambda: mirror.move_user_to_contact(ann, target, by=technician),
        lambda: mirror.move_user_to_contact(bob, target, by=technician),
    )
    assert first.error is None, outcome(first)
    assert "already has a portal user" in str(second.error), outcome(second)
    assert fresh(ann).contact == target
    assert fresh(bob).contact_id == bob.contact_id


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_orphan_move_and_a_merge_of_the_same_contacts_do_not_deadlock(
    account, partner_role, technician, api_token
):
    """Both lock the contacts before the user. The move used to lock the user first: a merge
    holding the contacts and then asking for the user waited for the move, which waited for
    the merge, until PostgreSQL broke the deadlock with an error (a 500)."""
    target = ContactFactory(portal_account=account, crm_account_name="Acme Corp")
    ann = PortalUserFactory(
        portal_account=account, role=partner_role, name="Ann", contact__deleted_at=timezone.now()
    )
    contacts_locked, go_on = threading.Event(), threading.Event()
    lock_contacts = Found.locked.__func__

    def pausing(cls, account, refs):
        # The merge stops with its contacts locked and before it locks their users.
        found = lock_contacts(cls, account, refs)
        if threading.current_thread() is merging:
            contacts_locked.set()
            go_on.wait(TIMEOUT)
        return found

    body = {
        "merges": [
            {
                "winner": {"contact_id": target.contact_id},
                "loser": {"contact_id": ann.contact.contact_id},
            }
        ]
    }
    merging = Racer(lambda: send(api_client_for(api_token.secret), "merge", body))
    moving = Racer(lambda: mirror.move_user_to_contact(ann, target, by=technician))
    with mock.patch.object(Found, "locked", classmethod(pausing)):
        try:
            merging.start()
            assert contacts_locked.wait(TIMEOUT), outcome(merging)
            moving.start()
            assert moving.connected.wait(TIMEOUT)
            wait_until_blocked(moving, by=merging.pid)
        finally:
            go_on.set()
            for racer in (merging, moving):
                if racer.ident is not None:
                    racer.join(TIMEOUT)
    for racer in (merging, moving):
        assert not racer.is_alive(), "a racer is stuck: deadlock or a lock never released"
    assert merging.error is None, outcome(merging)
    assert merging.result.status_code == 200, merging.result.content
    # The move then finds the user on another contact: a plain refusal, nothing changed twice.
    assert isinstance(moving.error, LifecycleError), outcome(moving)
    assert "changed at the same moment" in str(moving.error)
    assert fresh(ann).contact == target


def test_a_name_with_line_breaks_from_the_crm_is_kept_as_one_line(api_client, account):
    """A contact's name goes into the first line of every email its user gets ("Hello <name>,")
    and into CSV downloads: line breaks and other control characters from the CRM become
    spaces, and a name of nothing else is refused like an empty one."""
    item = {
        "contact_id": "003LINES00000000001",
        "name": "Evil\r\nBcc: x@evil.example\u2028\x1b",
        "crm_account_name": "Acme\tCorp",
    }
    assert upsert(api_client, item).status_code == 200
    contact = Contact.objects.get(contact_id="003LINES00000000001")
    assert (contact.name, contact.crm_account_name) == ("Evil Bcc: x@evil.example", "Acme Corp")

    # Text-direction overrides would show "evil" as "live", in the audit log too.
    item = {"contact_id": "003LINES00000000003", "name": "+cmd|calc!A0 \u202eevil"}
    assert upsert(api_client, item).status_code == 200
    assert Contact.objects.get(contact_id=item["contact_id"]).name == "+cmd|calc!A0 evil"

    refused = upsert(api_client, {"contact_id": "003LINES00000000002", "name": "\r\n\x07"})
    assert refused.status_code == 400
    assert "'name' is required" in refused.content.decode()


class _Deadlock(Exception):
    sqlstate = "40P01"


def _deadlock():
    from django.db import OperationalError

    error = OperationalError("deadlock detected")
    error.__cause__ = _Deadlock()
    return error


@pytest.mark.django_db(transaction=True)  # run again only outside a caller's transaction
def test_a_deadlock_is_run_again_once(api_client, account, monkeypatch):
    """PostgreSQL picks one of two crossing transactions as a deadlock's victim and rolls it
    back: the batch runs again (an attacker probe saw 500s from ten upserts at once)."""
    from contacts import sync

    real, calls = sync._upsert, []

    def deadlocked_once(*args):
        calls.append(1)
        if len(calls) == 1:
            raise _deadlock()
        return real(*args)

    monkeypatch.setattr(sync, "_upsert", deadlocked_once)
    response = upsert(api_client, {"contact_id": CID, "name": "Ivy", "email": "ivy@example.com"})

    assert response.status_code == 200, response.content
    assert Contact.objects.filter(contact_id=CID).exists()


def test_a_second_deadlock_is_a_409_that_says_to_send_again(api_client, account, monkeypatch):
    from contacts import sync

    def deadlocked(*args):
        raise _deadlock()

    monkeypatch.setattr(sync, "_upsert", deadlocked)
    response = upsert(api_client, {"contact_id": CID, "name": "Ivy", "email": "ivy@example.com"})

    assert response.status_code == 409
    assert "Send the batch again" in response.json()["error"]
