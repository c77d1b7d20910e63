"""The CRM-account filter of the Users and Contacts pages, and what it reads: the account's CRM
account names (contacts.models.CrmAccount, counted by triggers on the contacts) and each user's
copy of their contact's name (accounts.user_crm_accounts, copied by triggers), whichever path
writes the contacts and users. Runs on SQLite (triggers per row) and, in CI, on PostgreSQL."""

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from accounts.models import User, UserState
from contacts.models import Contact, CrmAccount
from tests.factories import ContactFactory, PortalUserFactory


def user_with_contact(account, name, crm, **extra):
    contact = ContactFactory(portal_account=account, name=name, crm_account_name=crm)
    return PortalUserFactory(portal_account=account, contact=contact, name=name, **extra)


def copy_of(user):
    return User.objects.values_list("crm_account_name", flat=True).get(pk=user.pk)


def names_counted(account):
    rows = CrmAccount.objects.filter(portal_account=account, contacts__gt=0)
    return dict(rows.values_list("name", "contacts"))


def test_a_new_user_copies_the_contacts_crm_account(account):
    ada = user_with_contact(account, "Ada", "Acme Corp")
    employee = PortalUserFactory(portal_account=account, contact=None, user_type="employee")
    assert copy_of(ada) == "Acme Corp"
    assert copy_of(employee) is None


def test_the_copy_follows_every_way_a_contact_or_user_changes(account):
    ada = user_with_contact(account, "Ada", "Acme Corp")
    bob = user_with_contact(account, "Bob", "Acme Corp")

    ada.contact.crm_account_name = "Acme Security"
    ada.contact.save()
    assert copy_of(ada) == "Acme Security"

    # A bulk update (the sync's and the import's batches) moves every user of the batch.
    Contact.objects.filter(portal_account=account).update(crm_account_name="Globex")
    assert (copy_of(ada), copy_of(bob)) == ("Globex", "Globex")

    # Re-linked to another contact (an orphaned user associated with a live contact).
    initech = ContactFactory(portal_account=account, crm_account_name="Initech")
    User.objects.filter(pk=bob.pk).update(contact=initech)
    assert copy_of(bob) == "Initech"


def test_the_copy_cannot_be_written_by_hand_or_by_a_stale_save(account):
    ada = user_with_contact(account, "Ada", "Acme Corp")
    stale = User.objects.get(pk=ada.pk)
    Contact.objects.filter(pk=ada.contact.pk).update(crm_account_name="Globex")
    stale.name = "Ada Larsen"
    stale.save()  # writes the "Acme Corp" it read before the rename
    assert copy_of(ada) == "Globex"
    User.objects.filter(pk=ada.pk).update(crm_account_name="Hooli")
    assert copy_of(ada) == "Globex"


def test_a_copy_given_with_a_bulk_insert_is_checked_against_the_contact(
    account, partner_role, employee_role
):
    """The import's COPY gives each user's copy, read with the contact: on PostgreSQL it is
    checked once per statement instead of filled row by row. A given copy that differs (read
    before a rename, or forged) is the contact's again; a missing one is filled; one given
    without a contact is dropped."""
    from helpers.bulk_sql import insert

    contacts = [
        ContactFactory(portal_account=account, crm_account_name=name)
        for name in ("Acme Corp", "Globex", "Initech", "")
    ]
    fields = ("kind", "portal_account_id", "user_type", "state", "contact_id", "role_id")
    fields += ("name", "email", "crm_account_name")
    given = ["Acme Corp", "Hooli", None, ""]
    rows = [
        ("portal", account.pk, "partner", "unconfirmed", contact.pk, partner_role.pk)
        + (f"User {i}", f"u{i}@acme.example", copy)
        for i, (contact, copy) in enumerate(zip(contacts, given, strict=True))
    ]
    rows.append(
        ("portal", account.pk, "employee", "unconfirmed", None, employee_role.pk)
        + ("Employee", "e@acme.example", "Forged")
    )
    ids = insert(User, fields, rows, returning_ids=True)
    copies = dict(User.objects.filter(pk__in=ids).values_list("pk", "crm_account_name"))
    assert [copies[pk] for pk in ids] == ["Acme Corp", "Globex", "Initech", "", None]


def test_the_crm_account_names_are_counted_per_account(account, other_account):
    acme = ContactFactory(portal_account=account, crm_account_name="Acme Corp")
    ContactFactory(portal_account=account, crm_account_name="Acme Corp")
    ContactFactory(portal_account=account, crm_account_name="")
    ContactFactory(portal_account=other_account, crm_account_name="Globex")
    assert names_counted(account) == {"Acme Corp": 2}

    acme.crm_account_name = "Initech"
    acme.save()
    Contact.objects.filter(portal_account=account, crm_account_name="Acme Corp").update(
        deleted_at=timezone.now()  # deleted contacts keep their users, who keep the name
    )
    assert names_counted(account) == {"Acme Corp": 1, "Initech": 1}
    acme.delete()
    assert names_counted(account) == {"Acme Corp": 1}
    assert names_counted(other_account) == {"Globex": 1}


def test_recount_reports_a_copy_that_drifted_and_fixes_it(account, capsys):
    # Before any write: PostgreSQL alters no table with pending (deferred) trigger events. The
    # test's transaction brings the trigger back.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "ALTER TABLE accounts_user DISABLE TRIGGER accounts_user_crm_account_update"
            )
        else:
            cursor.execute("DROP TRIGGER accounts_user_crm_account_update")
    ada = user_with_contact(account, "Ada", "Acme Corp")
    User.objects.filter(pk=ada.pk).update(crm_account_name="Hooli")

    with pytest.raises(CommandError, match="2 counter"):
        call_command("recount", "--account", account.slug)
    out = capsys.readouterr().out
    assert "acme: users per CRM account (their copies) crm_account=Hooli: 1 kept, 0 counted" in out
    assert "crm_account=Acme Corp: 0 kept, 1 counted" in out
    call_command("recount", "--fix")
    assert copy_of(ada) == "Acme Corp"
    call_command("recount")
    assert "The counters match" in capsys.readouterr().out


def shown(client, url_name, account, **params):
    response = client.get(reverse(url_name, args=[account.slug]), params)
    assert response.status_code == 200
    return response


def user_names(response):
    return {row.user.name for row in response.context["rows"]}


def test_the_users_filter_matches_part_of_a_name_in_any_case(admin_client, account):
    user_with_contact(account, "Ada", "Acme Corp")
    user_with_contact(account, "Bea", "ACME Security")
    user_with_contact(account, "Cal", "Globex")
    orphan = user_with_contact(account, "Dan", "Acme Corp")
    Contact.objects.filter(pk=orphan.contact.pk).update(deleted_at=timezone.now())

    assert user_names(shown(admin_client, "users", account, crm="acme")) == {"Ada", "Bea", "Dan"}
    assert user_names(shown(admin_client, "users", account, crm="Acme Corp")) == {"Ada", "Dan"}
    assert user_names(shown(admin_client, "users", account, crm="Initech")) == set()


def test_the_filter_sees_no_other_accounts_crm_accounts(admin_client, account, other_account):
    user_with_contact(account, "Ada", "Acme Corp")
    user_with_contact(other_account, "Olga", "Globex")
    assert user_names(shown(admin_client, "users", account, crm="Globex")) == set()
    page = shown(admin_client, "users", account).content.decode()
    assert '<option value="Acme Corp">' in page
    assert "Globex" not in page


def test_the_contacts_filter_matches_the_same_way(admin_client, account):
    ContactFactory(portal_account=account, name="Ada", crm_account_name="Acme Corp")
    ContactFactory(portal_account=account, name="Bea", crm_account_name="acme security")
    ContactFactory(portal_account=account, name="Cal", crm_account_name="Globex")
    response = shown(admin_client, "contacts", account, crm="ACME")
    assert {contact.name for contact in response.context["page"].object_list} == {"Ada", "Bea"}
    assert 'list="crm-account-options"' in response.content.decode()


def test_a_name_without_contacts_left_is_not_suggested(admin_client, account):
    gone = ContactFactory(portal_account=account, crm_account_name="Vandelay")
    gone.crm_account_name = "Vandelay Industries"
    gone.save()
    page = shown(admin_client, "users", account).content.decode()
    assert '<option value="Vandelay Industries">' in page
    assert '<option value="Vandelay">' not in page


def test_the_users_filter_keeps_the_tab(admin_client, account):
    user_with_contact(account, "Ada", "Acme Corp")
    user_with_contact(account, "Eve", "Acme Corp", state=UserState.DISABLED)
    response = shown(admin_client, "users", account, crm="Acme", tab="disabled")
    assert user_names(response) == {"Eve"}


def test_the_field_suggests_the_names_containing_what_is_typed(admin_client, account):
    for name in ("Acme Corp", "Globex Corp", "Initech"):
        ContactFactory(portal_account=account, crm_account_name=name)
    picker = reverse("crm-account-picker", args=[account.slug])

    typed = admin_client.get(picker, {"crm": "CORP"}).content.decode()
    assert typed.startswith('<datalist id="crm-account-options">')
    assert '<option value="Acme Corp">' in typed
    assert '<option value="Globex Corp">' in typed
    assert "Initech" not in typed
    assert "Initech" in admin_client.get(picker).content.decode()  # nothing typed: all names
    users_page = shown(admin_client, "users", account).content.decode()
    assert f'hx-get="{picker}"' in users_page


def test_another_accounts_names_are_not_suggested(account_admin_client, account, other_account):
    ContactFactory(portal_account=other_account, crm_account_name="Globex")
    mine = reverse("crm-account-picker", args=[account.slug])
    theirs = reverse("crm-account-picker", args=[other_account.slug])
    assert "Globex" not in account_admin_client.get(mine, {"crm": "glob"}).content.decode()
    assert account_admin_client.get(theirs, {"crm": "glob"}).status_code == 404
