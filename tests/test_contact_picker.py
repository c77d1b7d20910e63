"""Add user's contact picker: as the person types, the account's live contacts without a portal
user that match by name, email, contact id or Salesforce id, as datalist options."""

from django.urls import reverse
from django.utils import timezone

from tests.factories import ContactFactory, PortalUserFactory


def suggestions(client, account, typed):
    response = client.get(reverse("contact-picker", args=[account.slug]), {"contact_id": typed})
    assert response.status_code == 200
    return response.content.decode()


def test_suggests_matching_contacts_without_a_user(admin_client, account, other_account):
    free = ContactFactory(portal_account=account, name="Ada Larsen", email="ada@acme.example")
    taken = PortalUserFactory(portal_account=account, name="Ada Lovelace").contact
    gone = ContactFactory(portal_account=account, name="Ada Gone", deleted_at=timezone.now())
    foreign = ContactFactory(portal_account=other_account, name="Ada Elsewhere")

    page = suggestions(admin_client, account, "ada")

    assert f'value="{free.contact_id}"' in page
    assert "Ada Larsen · ada@acme.example · Acme Corp" in page
    for hidden in (taken, gone, foreign):
        assert hidden.contact_id not in page


def test_finds_by_email_and_by_contact_id(admin_client, account):
    contact = ContactFactory(portal_account=account, name="Olga Novak", email="olga@x.example")
    assert contact.contact_id in suggestions(admin_client, account, "olga@x")
    assert contact.contact_id in suggestions(admin_client, account, contact.contact_id)


def test_one_letter_suggests_nothing(admin_client, account):
    ContactFactory(portal_account=account, name="Ada Larsen")
    assert "<option" not in suggestions(admin_client, account, "a")


def test_the_add_user_field_asks_the_picker(admin_client, account, partner_role):
    page = admin_client.get(reverse("user-add", args=[account.slug])).content.decode()
    assert 'list="contact-options"' in page
    assert f'hx-get="{reverse("contact-picker", args=[account.slug])}"' in page
    assert '<datalist id="contact-options">' in page


def test_another_accounts_admin_cannot_use_the_picker(other_admin, account):
    from tests.conftest import _client_for

    response = _client_for(other_admin).get(reverse("contact-picker", args=[account.slug]))
    assert response.status_code == 404


def test_a_picked_contact_id_is_named_under_the_field(admin_client, account):
    """Picking an option leaves its contact id in the field; the picker's answer then says whom
    it names (an out-of-band swap), and nothing for a partial id."""
    olga = ContactFactory(portal_account=account, name="Olga Novak", email="olga@x.example")

    picked = suggestions(admin_client, account, olga.contact_id)
    assert 'id="picked-contact"' in picked
    assert 'hx-swap-oob="innerHTML"' in picked  # the live region stays, so it is announced
    assert "Picked: <strong>Olga Novak</strong> · olga@x.example" in picked
    assert "Picked:" not in suggestions(admin_client, account, olga.contact_id[:-1])
    page = admin_client.get(reverse("user-add", args=[account.slug])).content.decode()
    assert '<p id="picked-contact"' in page
