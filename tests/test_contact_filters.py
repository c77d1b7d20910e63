"""The contacts list's filters (portal user, CRM account) and sortable columns, kept in the URL
so that a filtered, sorted list can be bookmarked and paged."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import UserState
from contacts.models import Contact
from tests.factories import ContactFactory, PortalUserFactory


def contacts_url(account, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return reverse("contacts", args=[account.slug]) + (f"?{query}" if query else "")


def names_shown(client, account, **params):
    response = client.get(contacts_url(account, **params))
    assert response.status_code == 200
    body = response.content.decode().split('class="table contacts"')[1].split("</table>")[0]
    return re.findall(r'<a href="/accounts/[^"]+/contacts/\d+/"><strong>([^<]+)</strong>', body)


@pytest.fixture
def people(account, partner_role):
    def user_on(name, state, crm):
        contact = ContactFactory(portal_account=account, name=name, crm_account_name=crm)
        PortalUserFactory(portal_account=account, role=partner_role, contact=contact, state=state)
        return contact

    return {
        "free": ContactFactory(portal_account=account, name="Fay Free", crm_account_name="Beta"),
        "enabled": user_on("Eve Enabled", UserState.ENABLED, "Alpha"),
        "disabled": user_on("Dan Disabled", UserState.DISABLED, "Alpha"),
        "unconfirmed": user_on("Uma Unconfirmed", UserState.UNCONFIRMED, "Beta"),
    }


@pytest.mark.parametrize(
    ("portal", "expected"),
    [
        ("none", ["Fay Free"]),
        ("any", ["Dan Disabled", "Eve Enabled", "Uma Unconfirmed"]),
        ("enabled", ["Eve Enabled"]),
        ("disabled", ["Dan Disabled"]),
        ("unconfirmed", ["Uma Unconfirmed"]),
        ("nonsense", ["Dan Disabled", "Eve Enabled", "Fay Free", "Uma Unconfirmed"]),
    ],
)
def test_the_portal_user_filter(admin_client, account, people, portal, expected):
    assert names_shown(admin_client, account, portal=portal) == expected


def test_the_crm_account_filter_combines_with_the_portal_filter_and_search(
    admin_client, account, people
):
    assert names_shown(admin_client, account, crm="alp") == ["Dan Disabled", "Eve Enabled"]
    assert names_shown(admin_client, account, crm="beta", portal="none") == ["Fay Free"]
    assert names_shown(admin_client, account, crm="beta", q="uma") == ["Uma Unconfirmed"]
    html = admin_client.get(contacts_url(account, crm="zeta")).content.decode()
    assert "No contacts match the filters." in html


def test_filters_and_sort_stay_in_every_link_of_the_page(admin_client, account, people):
    for n in range(60):
        ContactFactory(portal_account=account, name=f"Zed {n:02}", crm_account_name="Beta")
    html = admin_client.get(contacts_url(account, portal="none", crm="Beta", sort="-email"))
    html = html.content.decode()
    assert '<option value="none" selected>' in html
    assert 'name="crm" value="Beta"' in html
    search = html.split('role="search"')[1].split("</form>")[0]
    assert '<option value="-email" selected>Email, Z to A</option>' in search  # keeps the order
    next_page = re.search(r'href="\?([^"]+)"[^>]*rel="next"', html).group(1).replace("&amp;", "&")
    assert set(next_page.split("&")) == {"portal=none", "crm=Beta", "sort=-email", "page=2"}
    email_header = re.search(r'href="\?([^"]+)"[^>]*>Email', html).group(1).replace("&amp;", "&")
    assert set(email_header.split("&")) == {"portal=none", "crm=Beta", "sort=email"}
    deleted_tab = (
        re.search(r'href="\?([^"]+)"[^>]*>\s*Deleted', html).group(1).replace("&amp;", "&")
    )
    assert set(deleted_tab.split("&")) == {"show=deleted", "portal=none", "crm=Beta"}
    # The bulk form carries them too, so "all matching" is this list.
    bulk = html.split('id="bulk-form"')[1].split('class="bulk-bar"')[0]
    for field in ['name="portal" value="none"', 'name="crm" value="Beta"', 'value="-email"']:
        assert field in bulk


def test_each_column_sorts_both_ways(admin_client, account):
    now = timezone.now()
    rows = [("Bea", "c@x.example", "Zulu", 2), ("Cal", "a@x.example", "Mike", 3)]
    rows += [("Abe", "b@x.example", "Alpha", 1)]
    for name, email, crm, days in rows:
        contact = ContactFactory(portal_account=account, name=name, email=email)
        Contact.objects.filter(pk=contact.pk).update(
            crm_account_name=crm, created_at=now - timedelta(days=days)
        )
    assert names_shown(admin_client, account) == ["Abe", "Bea", "Cal"]
    assert names_shown(admin_client, account, sort="-name") == ["Cal", "Bea", "Abe"]
    assert names_shown(admin_client, account, sort="email") == ["Cal", "Abe", "Bea"]
    assert names_shown(admin_client, account, sort="-email") == ["Bea", "Abe", "Cal"]
    assert names_shown(admin_client, account, sort="crm") == ["Abe", "Cal", "Bea"]
    assert names_shown(admin_client, account, sort="created") == ["Cal", "Bea", "Abe"]
    assert names_shown(admin_client, account, sort="-created") == ["Abe", "Bea", "Cal"]
    # A sort the list does not offer is its usual order, not an error.
    assert names_shown(admin_client, account, sort="deleted") == ["Abe", "Bea", "Cal"]
    assert names_shown(admin_client, account, sort="user__state") == ["Abe", "Bea", "Cal"]


def test_the_sort_by_select_offers_each_sort_both_ways_in_a_plain_get_form(admin_client, account):
    """Phones show cards without column headers: the search form's Sort by select sorts, and
    without JavaScript its Sort button sends the form (a GET: the order is in the URL)."""
    for name in ("Bea", "Abe", "Cal"):
        ContactFactory(portal_account=account, name=name)
    html = admin_client.get(contacts_url(account, q="a", sort="-name")).content.decode()
    search = html.split('role="search"')[1].split("</form>")[0]
    select = search.split('name="sort"')[1].split("</select>")[0]
    assert re.findall(r'<option value="([^"]*)"', select) == [
        "name",
        "-name",
        "email",
        "-email",
        "crm",
        "-crm",
        "-created",
        "created",
    ]
    assert '<option value="-created">Added, newest first</option>' in search
    assert '<option value="-name" selected>Name, Z to A</option>' in search
    assert '<noscript><button type="submit" class="button small">Sort</button></noscript>' in search
    # What that form sends: the search and the new order, page 1.
    assert names_shown(admin_client, account, q="a", sort="name") == ["Abe", "Bea", "Cal"]
    deleted = admin_client.get(contacts_url(account, show="deleted")).content.decode()
    options = deleted.split('name="sort"')[1].split("</select>")[0]
    assert re.findall(r'<option value="([^"]*)"', options) == [
        "name",
        "-name",
        "-deleted",
        "deleted",
    ]


def test_deleted_contacts_sort_by_name_or_deletion_date(admin_client, account):
    now = timezone.now()
    for name, days in [("Ann", 1), ("Ben", 3), ("Cat", 2)]:
        ContactFactory(portal_account=account, name=name, deleted_at=now - timedelta(days=days))
    assert names_shown(admin_client, account, show="deleted") == ["Ann", "Ben", "Cat"]
    assert names_shown(admin_client, account, show="deleted", sort="-deleted") == [
        "Ann",
        "Cat",
        "Ben",
    ]
    assert names_shown(admin_client, account, show="deleted", sort="email") == ["Ann", "Ben", "Cat"]


def test_another_accounts_contacts_never_match_a_filter(
    account_admin_client, account, other_account, people
):
    ContactFactory(portal_account=other_account, name="Gina Globex", crm_account_name="Beta")
    assert "Gina Globex" not in names_shown(account_admin_client, account, crm="Beta")
    assert "Gina Globex" not in names_shown(account_admin_client, account, portal="none")


def test_the_address_bar_shows_the_list_without_empty_fields(admin_client, account, people):
    """The search form sends its empty filter fields too; the URL pushed after an HTMX search
    is the list as it is (bookmarkable, no `portal=&crm=`)."""
    response = admin_client.get(
        contacts_url(account, q="fay", portal="", crm="", sort="name"),
        headers={"HX-Request": "true"},
    )
    assert response.headers["HX-Push-Url"] == contacts_url(account, q="fay")
    filtered = admin_client.get(
        contacts_url(account, portal="none", crm="", sort="-email"),
        headers={"HX-Request": "true"},
    )
    assert filtered.headers["HX-Push-Url"] == contacts_url(account, portal="none", sort="-email")
