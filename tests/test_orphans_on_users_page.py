"""Orphaned users (a partner or customer user whose CRM contact is deleted) on the users page:
listed under the state they are in, marked, and offered the fixes rather than Enable."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import UserState
from contacts.models import Contact
from tests.factories import PortalUserFactory

BADGE = "Orphaned: contact deleted"


def users_url(account, tab):
    return reverse("users", args=[account.slug]) + f"?tab={tab}"


def orphaned(user):
    Contact.objects.filter(pk=user.contact_id).update(deleted_at=timezone.now())
    return user


def row(page, user):
    """The <tr> of one user, so an assertion about its menu cannot read another row's."""
    found = re.search(rf'<tr id="user-{user.pk}">.*?</tr>', page, re.S)
    assert found, f"{user.name} is not listed"
    return found.group(0)


def counts(page):
    return dict(
        re.findall(r'(Enabled|Disabled|Unconfirmed) <span class="count">(\d+)</span>', page)
    )


@pytest.fixture
def people(account, partner_role):
    def make(name, state=UserState.ENABLED):
        return PortalUserFactory(portal_account=account, role=partner_role, name=name, state=state)

    return {
        "eve": orphaned(make("Eve Orphan")),
        "una": orphaned(make("Una Orphan", UserState.UNCONFIRMED)),
        "dan": make("Dan Disabled", UserState.DISABLED),
        "ada": make("Ada Enabled"),
    }


def test_an_enabled_orphan_is_listed_under_enabled_with_the_badge(admin_client, account, people):
    enabled = admin_client.get(users_url(account, "enabled")).content.decode()
    eve = row(enabled, people["eve"])
    assert BADGE in eve
    assert BADGE not in row(enabled, people["ada"])
    disabled = admin_client.get(users_url(account, "disabled")).content.decode()
    assert "Eve Orphan" not in disabled


def test_an_unconfirmed_orphan_is_listed_under_unconfirmed(admin_client, account, people):
    unconfirmed = admin_client.get(users_url(account, "unconfirmed")).content.decode()
    assert BADGE in row(unconfirmed, people["una"])
    for tab in ["enabled", "disabled"]:
        assert "Una Orphan" not in admin_client.get(users_url(account, tab)).content.decode()


def test_the_tab_counts_agree_with_the_lists(admin_client, account, people):
    page = admin_client.get(users_url(account, "enabled")).content.decode()
    assert counts(page) == {"Enabled": "2", "Disabled": "1", "Unconfirmed": "1"}
    for tab, label in [
        ("enabled", "Enabled"),
        ("disabled", "Disabled"),
        ("unconfirmed", "Unconfirmed"),
    ]:
        listed = admin_client.get(users_url(account, tab)).content.decode().count('name="ids"')
        assert str(listed) == counts(page)[label]


def test_the_orphans_menu_offers_the_fixes_and_no_enable(admin_client, account, people):
    eve = people["eve"]
    menu = row(admin_client.get(users_url(account, "enabled")).content.decode(), eve)
    assert reverse("orphan-associate", args=[account.slug, eve.pk]) in menu
    assert reverse("contact", args=[account.slug, eve.contact_id]) in menu
    assert reverse("orphaned-users", args=[account.slug]) in menu
    # CONTACT_DELETED_ACTIONS: what takes access away, or a role change; nothing that mails them.
    for name in ["disable", "change-role", "end-sessions", "delete"]:
        assert reverse("user-action", args=[account.slug, eve.pk, name]) in menu
    for name in ["enable", "send-login-email", "reset-password"]:
        assert reverse("user-action", args=[account.slug, eve.pk, name]) not in menu


def test_the_disabled_tabs_bulk_bar_no_longer_holds_orphans(admin_client, account, people):
    disabled = admin_client.get(users_url(account, "disabled")).content.decode()
    assert BADGE not in disabled
    assert "Dan Disabled" in disabled
    assert 'value="enable"' in disabled  # Dan can be enabled: he is really disabled


def test_a_healthy_users_menu_has_no_fixes(admin_client, account, people):
    ada = row(admin_client.get(users_url(account, "enabled")).content.decode(), people["ada"])
    assert "Associate with another contact" not in ada
    assert reverse("user-action", args=[account.slug, people["ada"].pk, "send-login-email"]) in ada


def test_an_account_admin_sees_the_same_placement(account_admin_client, account, people):
    page = account_admin_client.get(users_url(account, "enabled")).content.decode()
    assert BADGE in row(page, people["eve"])
    assert counts(page)["Enabled"] == "3"  # Ada Admin holds the account's admin seat


def test_the_page_query_count_does_not_grow_with_orphans(
    admin_client, account, partner_role, django_assert_max_num_queries
):
    for state in [UserState.ENABLED, UserState.UNCONFIRMED, UserState.DISABLED] * 10:
        orphaned(PortalUserFactory(portal_account=account, role=partner_role, state=state))
    # The Unconfirmed tab also reads the account's reminder policy (the next reminder's date);
    # every tab, the CRM account names the filter suggests.
    for tab, queries in [("enabled", 9), ("unconfirmed", 10), ("disabled", 9)]:
        with django_assert_max_num_queries(queries):
            page = admin_client.get(users_url(account, tab)).content.decode()
        assert page.count(BADGE) == 10
