"""Users page filters (role, user type, last sign-in, CRM account): kept in the URL, by the tab
links and sorts, by the bulk "all matching" and its confirmation, and by the CSV export."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import User, UserState, UserType
from tests.factories import ContactFactory, PortalUserFactory, RoleFactory


def users_url(account, **query):
    url = reverse("users", args=[account.slug])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


@pytest.fixture
def people(account, partner_role, customer_role):
    now = timezone.now()

    def make(name, role, user_type=UserType.PARTNER, crm="Acme Corp", **extra):
        contact = ContactFactory(portal_account=account, name=name, crm_account_name=crm)
        return PortalUserFactory(
            portal_account=account,
            role=role,
            user_type=user_type,
            contact=contact,
            name=name,
            **extra,
        )

    return {
        "recent": make("Rita Recent", partner_role, last_login=now - timedelta(days=2)),
        "stale": make("Sam Stale", partner_role, last_login=now - timedelta(days=45)),
        "never": make("Nina Never", customer_role, UserType.CUSTOMER, crm="Globex Systems"),
        "gone": make("Gil Gone", customer_role, UserType.CUSTOMER, state=UserState.DISABLED),
    }


def names(response):
    return {row.user.name for row in response.context["rows"]}


def test_each_filter_narrows_the_tab(admin_client, account, people, partner_role):
    get = lambda **q: names(admin_client.get(users_url(account, **q)))  # noqa: E731
    assert get() == {"Rita Recent", "Sam Stale", "Nina Never"}
    assert get(role=partner_role.pk) == {"Rita Recent", "Sam Stale"}
    assert get(type="customer") == {"Nina Never"}
    assert get(signed_in="never") == {"Nina Never"}
    assert get(signed_in="30") == {"Sam Stale", "Nina Never"}
    assert get(signed_in="90") == {"Nina Never"}
    assert get(crm="globex") == {"Nina Never"}
    assert get(type="customer", tab="disabled") == {"Gil Gone"}


def test_filters_stay_in_the_tab_links_sorts_and_export_link(admin_client, account, people):
    page = admin_client.get(users_url(account, type="customer", signed_in="never")).content
    page = page.decode()
    assert "?tab=disabled&amp;type=customer&amp;signed_in=never" in page
    # Unconfirmed users never signed in: that tab drops the sign-in filter.
    assert "?tab=unconfirmed&amp;type=customer&amp;sort=" not in page
    assert "?tab=unconfirmed&amp;type=customer" in page
    assert "type=customer&amp;signed_in=never&amp;sort=-name" in page
    assert "export.csv?tab=enabled&amp;type=customer&amp;signed_in=never" in page


def test_the_export_holds_the_filtered_users_only(admin_client, account, people):
    response = admin_client.get(
        reverse("users-export", args=[account.slug]) + "?tab=enabled&type=customer"
    )
    exported = b"".join(response.streaming_content).decode()
    assert "Nina Never" in exported
    assert "Rita Recent" not in exported


def test_bulk_on_all_matching_acts_on_the_filtered_users_only(admin_client, account, people):
    url = reverse("users-bulk", args=[account.slug])
    asked = admin_client.post(
        url, {"action": "disable", "all_matching": "1", "tab": "enabled", "signed_in": "30"}
    ).content.decode()
    assert "Disable 2 users?" in asked
    # The confirmation carries the filter, so confirming acts on the same two.
    assert 'name="signed_in" value="30"' in asked

    admin_client.post(
        url,
        {
            "action": "disable",
            "all_matching": "1",
            "tab": "enabled",
            "signed_in": "30",
            "confirmed": "1",
        },
    )
    disabled = set(User.objects.filter(state=UserState.DISABLED).values_list("name", flat=True))
    assert disabled == {"Gil Gone", "Sam Stale", "Nina Never"}


@pytest.mark.parametrize(
    "query",
    [
        {"role": "abc"},
        {"role": "99999999999999999999999"},
        {"type": "admin"},
        {"signed_in": "7"},
        {"role": "-4"},
    ],
)
def test_a_filter_value_that_means_nothing_is_ignored(admin_client, account, people, query):
    response = admin_client.get(users_url(account), query)
    assert response.status_code == 200
    assert names(response) == {"Rita Recent", "Sam Stale", "Nina Never"}


def test_a_nul_byte_in_the_crm_filter_is_not_an_error(admin_client, account, people):
    response = admin_client.get(users_url(account), {"crm": "Glob\x00ex"})
    assert response.status_code == 200
    assert names(response) == {"Nina Never"}


def test_another_accounts_role_finds_nobody(admin_client, account, other_account, people):
    foreign_role = RoleFactory(portal_account=other_account)
    PortalUserFactory(portal_account=other_account, role=foreign_role)
    assert names(admin_client.get(users_url(account, role=foreign_role.pk))) == set()
