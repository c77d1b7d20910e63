"""The dashboard's quick actions (invite, login email, magic link with a person picked by name or
email), its recent activity, and its license types linking to the filtered Users list."""

from django.urls import reverse

from accounts import lifecycle
from accounts.models import UserState, UserType
from tests.factories import PortalUserFactory


def quick_url(account, quick, **query):
    url = reverse("quick-action", args=[account.slug, quick])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def test_the_dashboard_offers_the_quick_actions(admin_client, account):
    page = admin_client.get(reverse("dashboard", args=[account.slug])).content.decode()
    assert f'href="{reverse("user-add", args=[account.slug])}">Invite a contact' in page
    assert quick_url(account, "login-email") in page
    assert quick_url(account, "magic-link") in page
    assert f"{reverse('users', args=[account.slug])}?type=customer" in page


def test_a_picked_person_leads_to_the_rows_confirmation(admin_client, account):
    ada = PortalUserFactory(portal_account=account, email="ada@acme.example")
    response = admin_client.get(quick_url(account, "login-email", user="ADA@acme.example"))
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "user-action", args=[account.slug, ada.pk, "send-login-email"]
    )
    response = admin_client.get(quick_url(account, "magic-link", user="ada@acme.example"))
    assert response["Location"] == reverse("user-links", args=[account.slug, ada.pk])


def test_nobody_by_that_email_says_what_to_do(admin_client, account, other_account):
    PortalUserFactory(portal_account=other_account, email="gus@globex.example")
    response = admin_client.get(quick_url(account, "login-email", user="gus@globex.example"))
    assert response.status_code == 400
    assert "Nobody in Acme Portal has the email gus@globex.example" in response.content.decode()


def test_an_unknown_quick_action_is_a_404(admin_client, account):
    assert admin_client.get(quick_url(account, "explode")).status_code == 404


def test_the_person_picker_suggests_enabled_users_of_the_account(
    admin_client, account, other_account
):
    PortalUserFactory(portal_account=account, name="Ada Larsen", email="ada@acme.example")
    PortalUserFactory(
        portal_account=account, name="Ada Gone", email="gone@acme.example", state=UserState.DISABLED
    )
    PortalUserFactory(
        portal_account=other_account, name="Ada Elsewhere", email="ada@globex.example"
    )
    page = admin_client.get(
        reverse("user-picker", args=[account.slug]), {"user": "ada"}
    ).content.decode()
    assert '<option value="ada@acme.example">Ada Larsen</option>' in page
    assert "gone@acme.example" not in page
    assert "globex" not in page


def test_recent_activity_names_who_did_what_to_whom(admin_client, account, technician):
    ada = PortalUserFactory(portal_account=account, name="Ada Larsen", user_type=UserType.PARTNER)
    lifecycle.disable(ada, by=technician)
    page = admin_client.get(reverse("dashboard", args=[account.slug])).content.decode()
    assert "Recent activity" in page
    assert "<strong>Theo Tech</strong>" in page
    assert "· Ada Larsen</span>" in page


def test_recent_activity_says_just_now_and_names_a_person_acting_on_themselves_once(
    admin_client, account, partner_role
):
    ada = PortalUserFactory(
        portal_account=account, name="Ada Larsen", role=partner_role, state=UserState.UNCONFIRMED
    )
    lifecycle.activate(ada, "a-long-enough-password-1")
    page = admin_client.get(reverse("dashboard", args=[account.slug])).content.decode()
    activity = page.split('class="recent-activity"')[1].split("</ul>")[0]
    assert "0 minutes ago" not in activity
    assert ">just now</time>" in activity
    assert 'title="' in activity  # the exact time on hover
    assert "<strong>Ada Larsen</strong> · Activated</span>" in activity


def test_invite_a_contact_is_a_page_whose_form_posts_itself(admin_client, account, partner_role):
    """The dashboard's Invite a contact opens the add-user form as a page: there is no users
    list on it for an HTMX swap to land in, so the form posts plainly and comes back to the
    list; the Users page's dialog (HTMX) swaps the list in place."""
    url = reverse("user-add", args=[account.slug])
    page = admin_client.get(url).content.decode()
    assert 'id="user-list"' not in page
    assert f'hx-post="{url}"' not in page
    assert 'hx-target="#user-list"' not in page
    dialog = admin_client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert f'hx-post="{url}" hx-target="#user-list"' in dialog

    response = admin_client.post(
        url, {"name": "Nia New", "email": "nia@acme.example", "role": partner_role.pk}
    )

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("users", args=[account.slug]))
    assert account.users.filter(email="nia@acme.example").exists()


def test_a_name_typed_where_the_email_goes_says_to_pick_from_the_suggestions(admin_client, account):
    response = admin_client.get(quick_url(account, "magic-link", user="Olga No"))
    assert response.status_code == 400
    assert "&#x27;Olga No&#x27; is not an email." in response.content.decode()
    assert "has the email" not in response.content.decode()
