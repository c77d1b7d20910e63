import csv
import io
import re

import pytest
from django.urls import reverse

from accounts.models import AuditEvent, OutboxEmail, User, UserState, UserType
from contacts.models import Contact
from tests.factories import ContactFactory, PortalUserFactory, RoleFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


def users_url(account, **query):
    url = reverse("users", args=[account.slug])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def action_url(account, user, action):
    return reverse("user-action", args=[account.slug, user.pk, action])


@pytest.fixture
def people(account, partner_role):
    make = lambda **kw: PortalUserFactory(portal_account=account, role=partner_role, **kw)  # noqa: E731
    return {
        "ada": make(name="Ada Lovelace", email="ada@example.com"),
        "alan": make(name="Alan Turing", email="alan@example.com"),
        "grace": make(name="Grace Hopper", email="grace@example.com", state=UserState.UNCONFIRMED),
        "ken": make(name="Ken Thompson", email="ken@example.com", state=UserState.DISABLED),
    }


def test_tabs_show_their_counts_and_their_users(admin_client, account, people):
    page = admin_client.get(users_url(account)).content.decode()
    assert 'Enabled <span class="count">2</span>' in page
    assert 'Disabled <span class="count">1</span>' in page
    assert 'Unconfirmed <span class="count">1</span>' in page
    assert "Ada Lovelace" in page
    assert "Grace Hopper" not in page
    unconfirmed = admin_client.get(users_url(account, tab="unconfirmed")).content.decode()
    assert "Grace Hopper" in unconfirmed
    assert "Ada Lovelace" not in unconfirmed


def test_a_user_whose_contact_was_deleted_stays_under_their_state(admin_client, account, people):
    Contact.objects.filter(pk=people["ada"].contact_id).update(deleted_at="2026-01-01T00:00Z")
    page = admin_client.get(users_url(account, tab="enabled")).content.decode()
    assert "Ada Lovelace" in page
    assert "Orphaned: contact deleted" in page
    assert (
        "Ada Lovelace" not in admin_client.get(users_url(account, tab="disabled")).content.decode()
    )


@pytest.mark.parametrize("term", ["lovelace", "ADA@example", "contact-id"])
def test_search_by_name_email_or_contact_id(admin_client, account, people, term):
    if term == "contact-id":
        term = people["ada"].contact.contact_id
    page = admin_client.get(users_url(account, q=term)).content.decode()
    assert "Ada Lovelace" in page
    assert "Alan Turing" not in page


def test_a_search_with_nobody_in_this_tab_points_to_the_other_tabs(admin_client, account, people):
    """A disabled user searched for on the Enabled tab: the empty list says the search looked in
    this tab only and links the same search in the others; no bulk bar offers "All 0"."""
    page = admin_client.get(users_url(account, q="Thompson")).content.decode()

    assert "No enabled users match “Thompson”. The search looks in this tab only" in page
    assert re.search(r">Disabled</a> or <a [^>]+>Unconfirmed</a>\.", page)
    assert "tab=disabled" in page
    assert "q=Thompson" in page
    assert "All 0 matching" not in page
    assert 'aria-label="Bulk actions"' not in page
    disabled = admin_client.get(users_url(account, tab="disabled", q="Thompson")).content.decode()
    assert "Ken Thompson" in disabled
    assert 'aria-label="Bulk actions"' in disabled


def test_sorting_and_the_url_keeps_tab_search_and_page(admin_client, account, people):
    page = admin_client.get(users_url(account, sort="-name")).content.decode()
    assert page.index("Alan Turing") < page.index("Ada Lovelace")
    assert 'href="?tab=enabled"' in page  # clicking Name again goes back to the usual order
    page = admin_client.get(users_url(account, q="a")).content.decode()
    assert "?tab=enabled&amp;q=a&amp;sort=-name" in page


@pytest.mark.parametrize(
    ("tab", "values"),
    [
        ("enabled", ["name", "-name", "-last_login", "last_login"]),
        ("disabled", ["name", "-name", "-disabled_at", "disabled_at"]),
        (
            "unconfirmed",
            ["name", "-name", "-invited_at", "invited_at", "-last_invited_at", "last_invited_at"],
        ),
    ],
)
def test_the_sort_by_select_offers_the_tabs_sorts_in_the_search_form(
    admin_client, account, people, tab, values
):
    """Phones show cards without column headers: the search form's Sort by select sorts, and
    without JavaScript its Sort button sends the form (a GET, so the order is in the URL)."""
    page = admin_client.get(users_url(account, tab=tab)).content.decode()
    search = page.split('role="search"')[1].split("</form>")[0]
    select = search.split('name="sort"')[1].split("</select>")[0]
    assert re.findall(r'<option value="([^"]*)"', select) == values
    assert '<label for="user-sort">Sort by</label>' in search
    assert '<noscript><button type="submit" class="button small">Sort</button></noscript>' in search


def test_the_sort_by_select_shows_the_order_and_a_search_keeps_it(admin_client, account, people):
    page = admin_client.get(users_url(account, sort="-name")).content.decode()
    assert '<option value="-name" selected>Name, Z to A</option>' in page
    assert '<option value="-last_login">Last sign-in, newest first</option>' in page
    # The form sends q with the chosen sort: the search's matches come in that order.
    page = admin_client.get(users_url(account, tab="enabled", q="a", sort="-name")).content.decode()
    assert page.index("Alan Turing") < page.index("Ada Lovelace")
    assert '<option value="-name" selected>' in page


def test_an_htmx_search_pushes_the_url_without_empty_fields(admin_client, account, people):
    response = admin_client.get(
        users_url(account, tab="disabled", q="ken", sort="name", role="", type="", crm=""), **HTMX
    )
    assert response["HX-Push-Url"] == users_url(account, tab="disabled", q="ken", sort="name")


def test_pages_of_fifty(admin_client, account, partner_role):
    for n in range(51):
        PortalUserFactory(portal_account=account, role=partner_role, name=f"User {n:02d}")
    first = admin_client.get(users_url(account)).content.decode()
    assert "Page 1 of 2" in first
    second = admin_client.get(users_url(account, page=2)).content.decode()
    assert second.count('name="ids"') == 1


def test_the_page_makes_a_fixed_number_of_queries(
    admin_client, account, partner_role, django_assert_max_num_queries
):
    for state in [UserState.ENABLED, UserState.UNCONFIRMED] * 20:
        PortalUserFactory(portal_account=account, role=partner_role, state=state)
    # The Unconfirmed tab also reads the account's reminder policy (the next reminder's date);
    # every tab, the CRM account names the filter suggests.
    for tab, queries in [("enabled", 9), ("unconfirmed", 10), ("disabled", 9)]:
        with django_assert_max_num_queries(queries):
            assert admin_client.get(users_url(account, tab=tab)).status_code == 200


def test_htmx_requests_get_the_list_fragment_only(admin_client, account, people):
    response = admin_client.get(users_url(account, tab="unconfirmed"), **HTMX)
    body = response.content.decode()
    assert "Grace Hopper" in body
    assert "<html" not in body


# --- row actions ---


def test_the_confirm_step_names_the_user_and_the_consequence(admin_client, account, people):
    page = admin_client.get(action_url(account, people["ada"], "disable")).content.decode()
    assert "Disable Ada Lovelace?" in page
    assert "will not be able to sign in" in page
    assert User.objects.get(pk=people["ada"].pk).state == UserState.ENABLED


def test_disable_moves_the_user_to_the_disabled_tab(admin_client, account, people):
    response = admin_client.post(action_url(account, people["ada"], "disable"), {"tab": "enabled"})
    assert response.status_code == 302
    assert response.url == users_url(account, tab="enabled")
    page = admin_client.get(response.url).content.decode()
    assert "Access disabled for Ada Lovelace." in page
    assert 'Disabled <span class="count">2</span>' in page
    assert User.objects.get(pk=people["ada"].pk).state == UserState.DISABLED


def test_an_htmx_action_returns_the_refreshed_list_with_the_message(admin_client, account, people):
    response = admin_client.post(
        action_url(account, people["grace"], "reinvite"), {"tab": "unconfirmed"}, **HTMX
    )
    body = response.content.decode()
    assert "Invitation sent again to Grace Hopper." in body
    assert 'Unconfirmed <span class="count">1</span>' in body
    assert response["HX-Push-Url"].endswith("?tab=unconfirmed")
    assert OutboxEmail.objects.filter(user=people["grace"], kind="reinvitation").exists()


def test_change_role_asks_for_an_active_role(admin_client, account, people, inactive_role):
    customer = RoleFactory(portal_account=account, name="Customer User")
    url = action_url(account, people["ada"], "change-role")
    assert "Reseller" not in admin_client.get(url).content.decode()
    assert admin_client.post(url, {"role": inactive_role.pk}).status_code == 400
    assert admin_client.post(url, {"role": customer.pk}).status_code == 302
    assert User.objects.get(pk=people["ada"].pk).role == customer


def test_a_refused_action_says_why_and_changes_nothing(admin_client, account, people):
    account.partner_licenses = 2  # ada and alan enabled, grace unconfirmed: 3 seats in use
    account.save()
    response = admin_client.post(action_url(account, people["ken"], "enable"))
    assert response.status_code == 409
    assert "No Partner licenses left: 3 of 2 in use." in response.content.decode()
    assert User.objects.get(pk=people["ken"].pk).state == UserState.DISABLED


def test_an_action_that_does_not_exist_is_404(admin_client, account, people):
    assert admin_client.get(action_url(account, people["ada"], "explode")).status_code == 404


def test_an_account_admin_cannot_act_on_their_own_seat(
    account_admin_client, account, account_admin
):
    for action in ["disable", "delete", "change-role"]:
        response = account_admin_client.post(action_url(account, account_admin, action))
        assert response.status_code == 403
    assert User.objects.get(pk=account_admin.pk).state == UserState.ENABLED


def test_only_mssp_staff_move_the_admin_seat(
    account_admin_client, technician_client, account, people
):
    url = action_url(account, people["alan"], "make-admin")
    assert account_admin_client.post(url).status_code == 403
    assert technician_client.post(url).status_code == 302
    assert User.objects.get(pk=people["alan"].pk).is_account_admin


def test_another_accounts_user_is_404(account_admin_client, account, other_account):
    stranger = PortalUserFactory(portal_account=other_account)
    assert account_admin_client.post(action_url(account, stranger, "disable")).status_code == 404
    assert (
        account_admin_client.post(action_url(other_account, stranger, "disable")).status_code == 404
    )
    assert User.objects.get(pk=stranger.pk).state == UserState.ENABLED


# --- bulk actions ---


def bulk(client, account, action, ids=(), confirmed=True, **extra):
    data = {"action": action, "ids": [u.pk for u in ids], **extra}
    if confirmed:
        data["confirmed"] = "1"
    return client.post(reverse("users-bulk", args=[account.slug]), data)


def test_bulk_asks_first_with_the_number(admin_client, account, people):
    page = bulk(admin_client, account, "disable", [people["ada"], people["alan"]], confirmed=False)
    assert "Disable 2 users?" in page.content.decode()
    assert User.objects.filter(state=UserState.DISABLED).count() == 1


def test_bulk_reports_successes_and_each_refusal(admin_client, account, partner_role, people):
    account.partner_licenses = 4
    account.save()
    extra = PortalUserFactory(portal_account=account, role=partner_role, state=UserState.DISABLED)
    response = bulk(admin_client, account, "enable", [people["ken"], extra, people["ada"]])
    page = admin_client.get(response.url).content.decode()
    assert "Access restored for 1 user." in page
    assert "No Partner licenses left: 4 of 4 in use." in page
    assert "Cannot enable Ada Lovelace: the user is Enabled." in page


def test_bulk_on_all_matching_uses_the_search(admin_client, account, people):
    bulk(admin_client, account, "disable", all_matching="1", tab="enabled", q="turing")
    assert User.objects.get(pk=people["alan"].pk).state == UserState.DISABLED
    assert User.objects.get(pk=people["ada"].pk).state == UserState.ENABLED


def test_bulk_login_emails(admin_client, account, people):
    both = [people["ada"], people["alan"]]
    ask = bulk(admin_client, account, "send-login-email", both, confirmed=False)
    assert "Send a login email to 2 users?" in ask.content.decode()
    response = bulk(admin_client, account, "send-login-email", both)
    assert OutboxEmail.objects.filter(kind="login_link").count() == 2
    assert "Login email sent to 2 users." in admin_client.get(response.url).content.decode()


def test_messages_name_the_action_then_the_person(admin_client, account, people):
    customer = RoleFactory(portal_account=account, name="Customer User")
    ada = people["ada"]
    page = admin_client.get(action_url(account, ada, "send-login-email")).content.decode()
    assert "Send a login email to Ada Lovelace?" in page
    response = admin_client.post(action_url(account, ada, "send-login-email"))
    assert "Login email sent to Ada Lovelace." in admin_client.get(response.url).content.decode()
    response = admin_client.post(action_url(account, ada, "change-role"), {"role": customer.pk})
    page = admin_client.get(response.url).content.decode()
    assert "Ada Lovelace&#x27;s role changed to Customer User." in page


def test_bulk_needs_a_known_action_and_a_selection(admin_client, account, people):
    assert bulk(admin_client, account, "explode", [people["ada"]]).status_code == 400
    assert bulk(admin_client, account, "disable", []).status_code == 400


def test_bulk_skips_users_of_another_account(account_admin_client, account, other_account):
    stranger = PortalUserFactory(portal_account=other_account)
    response = bulk(account_admin_client, account, "disable", [stranger])
    assert response.status_code == 400
    assert User.objects.get(pk=stranger.pk).state == UserState.ENABLED


# --- add user and export ---


def add(client, account, **data):
    return client.post(reverse("user-add", args=[account.slug]), data)


def test_add_a_new_person_creates_contact_user_and_invitation(admin_client, account, partner_role):
    response = add(
        admin_client,
        account,
        name="Barbara Liskov",
        email="barbara@example.com",
        user_type=UserType.PARTNER,
        role=partner_role.pk,
        send_invitation="on",
    )
    assert response.status_code == 302
    assert response.url.endswith("?tab=unconfirmed")
    user = User.objects.get(email="barbara@example.com")
    assert user.state == UserState.UNCONFIRMED
    assert user.contact.source == Contact.Source.CONSOLE
    assert OutboxEmail.objects.filter(user=user, kind="invitation").exists()
    assert AuditEvent.objects.filter(action="invite", subject_user=user).exists()


def test_enable_an_existing_contact_by_its_id(admin_client, account, customer_role):
    contact = ContactFactory(portal_account=account, name="Radia Perlman")
    add(
        admin_client,
        account,
        contact_id=contact.contact_id,
        user_type=UserType.CUSTOMER,
        role=customer_role.pk,
    )
    assert User.objects.get(contact=contact).name == "Radia Perlman"


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        ({"name": "X", "email": "not-an-email"}, 400, "Enter a valid email address."),
        ({"name": "Ada", "email": "ada@example.com"}, 409, "already exists"),
        ({"contact_id": "003xxxxxxxxxxxxxxxx"}, 400, "No contact with this id"),
        ({"name": "Y", "email": "y@example.com", "role": "inactive"}, 400, "Select a valid choice"),
    ],
)
def test_add_user_errors_show_in_the_form(
    admin_client, account, partner_role, inactive_role, people, data, status, message
):
    data = {"user_type": UserType.PARTNER, "role": partner_role.pk, **data}
    if data["role"] == "inactive":
        data["role"] = inactive_role.pk
    before = User.objects.count()
    response = add(admin_client, account, **data)
    assert response.status_code == status
    assert message in response.content.decode()
    assert User.objects.count() == before


def test_add_user_without_licenses_left(admin_client, account, partner_role):
    account.partner_licenses = 0
    account.save()
    response = add(
        admin_client,
        account,
        name="Z",
        email="z@example.com",
        user_type=UserType.PARTNER,
        role=partner_role.pk,
    )
    assert response.status_code == 409
    assert "No Partner licenses left: 0 of 0 in use." in response.content.decode()


def test_export_the_current_tab_and_search_with_formulas_neutralised(
    admin_client, account, partner_role
):
    PortalUserFactory(
        portal_account=account, role=partner_role, name="=HYPERLINK(1)", email="x@e.com"
    )
    PortalUserFactory(portal_account=account, role=partner_role, name="Plain Person")
    response = admin_client.get(reverse("users-export", args=[account.slug]) + "?q=HYPERLINK")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["Name", "Email", "Contact ID"]
    assert [row[0] for row in rows[1:]] == ["'=HYPERLINK(1)"]


def test_a_broad_search_counts_up_to_a_cap(admin_client, account, partner_role, monkeypatch):
    monkeypatch.setattr("accounts.user_listing.SEARCH_COUNT_CAP", 3)
    for n in range(5):
        PortalUserFactory(portal_account=account, role=partner_role, name=f"Anna {n}")
    page = admin_client.get(users_url(account, q="anna")).content.decode()
    assert "All 3+ matching" in page
    assert page.count('name="ids"') == 3  # beyond the cap: narrow the search


def test_enabled_users_show_their_last_email_and_its_error(admin_client, account, people):
    from accounts.models import EmailKind
    from mail import outbox

    row = outbox.queue_email(people["ada"], EmailKind.PASSWORD_RESET)
    OutboxEmail.objects.filter(pk=row.pk).update(status="failed", last_error="SMTP said no")
    page = admin_client.get(users_url(account)).content.decode()
    assert 'title="SMTP said no">Failed</span>' in page


@pytest.mark.parametrize("state", [UserState.ENABLED, UserState.UNCONFIRMED, UserState.DISABLED])
def test_an_orphaned_user_is_offered_only_what_the_lifecycle_allows(
    admin_client, account, partner_role, state
):
    orphan = PortalUserFactory(portal_account=account, role=partner_role, state=state)
    Contact.objects.filter(pk=orphan.contact_id).update(deleted_at="2026-01-01T00:00Z")
    # An orphan stays under the tab of their state (the row says the contact is deleted).
    page = admin_client.get(users_url(account, tab=state.value)).content.decode()

    assert reverse("user-action", args=[account.slug, orphan.pk, "delete"]) in page
    action_urls = {
        name: reverse("user-action", args=[account.slug, orphan.pk, name])
        for name in ("reinvite", "reset-password", "send-login-email", "make-admin", "enable")
    }
    assert not [name for name, url in action_urls.items() if url in page]


def test_a_tabs_search_sends_the_tab_once(admin_client, account):
    url = reverse("users", args=[account.slug])
    page = admin_client.get(url + "?tab=disabled").content.decode()
    # The form's own hidden field carries the tab; the URL it submits to has no query of its own.
    assert f'hx-get="{url}"' in page
    assert f'action="{url}"' in page
