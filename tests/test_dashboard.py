from django.urls import reverse
from django.utils import timezone

from accounts.models import UserState, UserType
from tests.factories import ContactFactory, PortalUserFactory


def dashboard_url(account):
    return reverse("dashboard", kwargs={"slug": account.slug})


def users(account, count, **kwargs):
    return PortalUserFactory.create_batch(count, portal_account=account, **kwargs)


def delete_contact(user):
    user.contact.deleted_at = timezone.now()
    user.contact.save()


def test_the_dashboard_shows_the_portal_url_and_user_counts(admin_client, account, settings):
    settings.PORTAL_BASE_URL = "https://portal.example.com"
    users(account, 4)
    users(account, 3, state=UserState.UNCONFIRMED)
    users(account, 2, state=UserState.DISABLED)

    response = admin_client.get(dashboard_url(account))

    assert response.status_code == 200
    page = response.content.decode()
    assert "https://portal.example.com/p/acme/" in page
    assert '<span class="stat-number">3</span>\n      <span class="stat-label">Unconfirmed' in page
    assert '<span class="stat-number">4</span>\n      <span class="stat-label">Enabled' in page
    assert '<span class="stat-number">2</span>\n      <span class="stat-label">Disabled' in page
    users_url = reverse("users", kwargs={"slug": "acme"})
    for tab in ("unconfirmed", "enabled", "disabled"):
        assert f"{users_url}?tab={tab}" in page


def test_the_dashboard_shows_license_use_per_type_with_a_warning_at_80_percent(
    admin_client, account
):
    account.customer_licenses = 15
    account.save()
    users(account, 12, user_type=UserType.CUSTOMER)
    users(account, 2, user_type=UserType.EMPLOYEE)

    page = admin_client.get(dashboard_url(account)).content.decode()

    assert "12 of 15 used" in page
    assert "0 of 10 used" in page
    assert "2 of 10 used" in page
    assert page.count("Nearly full</span>") == 1


def test_users_locked_out_by_a_deleted_contact_are_named(admin_client, account):
    blocked = users(account, 7, user_type=UserType.CUSTOMER)
    for user in blocked:
        delete_contact(user)
    users(account, 2, user_type=UserType.EMPLOYEE)
    ContactFactory(portal_account=account, deleted_at=timezone.now())  # no user: not listed

    page = admin_client.get(dashboard_url(account)).content.decode()

    assert "7 users cannot sign in because their CRM contact was deleted" in page
    shown = sorted(user.name for user in blocked)[:5]
    assert ", ".join(shown) in page
    assert "and 2 more" in page


def test_no_warning_when_every_contact_is_there(admin_client, account):
    users(account, 3)
    assert (
        "CRM contact was deleted" not in admin_client.get(dashboard_url(account)).content.decode()
    )


def test_one_blocked_user_reads_as_one(admin_client, account):
    delete_contact(users(account, 1, name="Zed Zero")[0])
    page = admin_client.get(dashboard_url(account)).content.decode()
    assert "1 user cannot sign in because their CRM contact was deleted" in page
    assert "Zed Zero." in page


def test_an_account_admin_sees_their_own_dashboard_only(
    account_admin_client, account, other_account
):
    assert account_admin_client.get(dashboard_url(account)).status_code == 200
    assert account_admin_client.get(dashboard_url(other_account)).status_code == 404


def test_an_account_admin_gets_no_settings_links(account_admin_client, account):
    page = account_admin_client.get(dashboard_url(account)).content.decode()
    assert reverse("portal-account-settings", kwargs={"slug": "acme"}) not in page
    assert reverse("roles", kwargs={"slug": "acme"}) not in page


def test_technicians_see_any_accounts_dashboard(technician_client, account, other_account):
    assert technician_client.get(dashboard_url(other_account)).status_code == 200


def test_the_dashboard_says_who_the_account_admin_is(admin_client, account_admin, account):
    assert "Ada Admin" in admin_client.get(dashboard_url(account)).content.decode()


def test_a_new_account_without_an_admin_says_so(admin_client, other_account):
    page = admin_client.get(dashboard_url(other_account)).content.decode()
    assert "none yet" in page


def test_the_dashboard_does_not_leak_other_accounts_users(admin_client, account, other_account):
    users(other_account, 5, user_type=UserType.CUSTOMER)
    page = admin_client.get(dashboard_url(account)).content.decode()
    assert "0 of 10 used" in page
    assert "5 of 10 used" not in page


def test_enabled_users_without_a_contact_count_under_their_state_like_on_the_users_page(
    admin_client, account
):
    delete_contact(users(account, 1)[0])
    users(account, 2)
    page = admin_client.get(dashboard_url(account)).content.decode()
    assert '<span class="stat-number">3</span>\n      <span class="stat-label">Enabled' in page
    assert '<span class="stat-number">0</span>\n      <span class="stat-label">Disabled' in page
    tabs = admin_client.get(f"/accounts/{account.slug}/users/?tab=enabled").content.decode()
    assert tabs.count("Orphaned: contact deleted") == 1
    assert "3 of 10 used" in page  # still holding their seat until disabled or deleted


def test_the_orphans_count_stops_at_a_cap_and_says_so(admin_client, account, monkeypatch):
    """The dashboard reads a bounded number of orphans whatever the account's size."""
    from accounts.views import portal_accounts

    monkeypatch.setattr(portal_accounts, "ORPHANS_COUNTED", 6)
    for user in users(account, 8, user_type=UserType.PARTNER):
        delete_contact(user)

    page = admin_client.get(dashboard_url(account)).content.decode()

    assert "More than 6 users cannot sign in because their CRM contact was deleted" in page
    assert "and more than 1 more" in page
