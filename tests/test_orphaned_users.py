"""Deleting a contact from the console, the orphaned users it leaves (partner and customer users
whose contact is deleted), and their two fixes: restore the contact, or associate the user with
another contact of the same CRM account."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent, User, UserState, UserType
from contacts.models import Contact
from tests.factories import ContactFactory, PortalUserFactory

HTMX = {"HX-Request": "true"}


def contact_url(contact, view="contact"):
    return reverse(view, args=[contact.portal_account.slug, contact.pk])


def orphans_url(account):
    return reverse("orphaned-users", args=[account.slug])


def associate_url(user, **params):
    url = reverse("orphan-associate", args=[user.portal_account.slug, user.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def deleted(contact):
    contact.deleted_at = timezone.now()
    contact.save()
    return contact


def fresh(obj):
    return type(obj).objects.get(pk=obj.pk)


@pytest.fixture
def jane(account, partner_role):
    return PortalUserFactory(
        portal_account=account,
        role=partner_role,
        name="Jane Doe",
        email="jane@example.com",
        contact__crm_account_name="Wayne Enterprises",
    )


@pytest.fixture
def orphan(jane):
    deleted(jane.contact)
    return jane


# --- deleting and restoring a contact ---


def test_deleting_a_contact_with_an_enabled_user_names_the_user(admin_client, jane):
    response = admin_client.get(contact_url(jane.contact, "contact-delete"), headers=HTMX)
    body = response.content.decode()
    assert response["HX-Retarget"] == "#dialog-slot"
    assert "<dialog" in body
    assert "Jane Doe (jane@example.com) will no longer be able to sign in to the portal." in body
    assert f'name="confirmed" value="user-{jane.pk}"' in body
    assert fresh(jane.contact).deleted_at is None


def test_the_server_requires_that_confirmation(admin_client, jane):
    url = contact_url(jane.contact, "contact-delete")
    response = admin_client.post(url)
    assert response.status_code == 400
    assert "Jane Doe (jane@example.com) will no longer be able to sign in" in (
        response.content.decode()
    )
    # A confirmation given while the contact had no user does not count for this one.
    response = admin_client.post(url, {"confirmed": "no-user"})
    assert response.status_code == 400
    assert "The contact changed since you opened this." in response.content.decode()
    assert fresh(jane.contact).deleted_at is None


def test_delete_a_contact_locks_its_user_out(admin_client, jane):
    url = contact_url(jane.contact, "contact-delete")
    response = admin_client.post(url, {"confirmed": f"user-{jane.pk}"})
    assert response.status_code == 302
    assert response.url == contact_url(jane.contact)
    assert fresh(jane.contact).deleted_at is not None
    assert not fresh(jane).is_active
    page = admin_client.get(response.url).content.decode()
    assert "Contact Jane Doe deleted. Jane Doe can no longer sign in." in page
    assert "Restore contact" in page


def test_delete_with_htmx_returns_the_contact_body(admin_client, account):
    lone = ContactFactory(portal_account=account, name="Lone Contact")
    url = contact_url(lone, "contact-delete")
    assert "The contact has no portal user." in admin_client.get(url).content.decode()
    response = admin_client.post(url, {"confirmed": "no-user"}, headers=HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body
    assert "Contact Lone Contact deleted." in body
    assert "This contact was deleted on" in body
    assert fresh(lone).deleted_at is not None


def test_restore_a_contact(admin_client, orphan):
    response = admin_client.post(contact_url(orphan.contact, "contact-restore"))
    assert response.status_code == 302
    assert fresh(orphan.contact).deleted_at is None
    assert fresh(orphan).is_active
    page = admin_client.get(response.url).content.decode()
    assert "Contact Jane Doe restored. Jane Doe can sign in again." in page


def test_an_account_admin_cannot_delete_their_own_contact(account_admin_client, account_admin):
    url = contact_url(account_admin.contact, "contact-delete")
    response = account_admin_client.post(url, {"confirmed": f"user-{account_admin.pk}"})
    assert response.status_code == 403
    assert fresh(account_admin.contact).deleted_at is None


def test_a_deleted_contact_cannot_get_a_portal_user(admin_client, account, partner_role):
    gone = deleted(ContactFactory(portal_account=account))
    page = admin_client.get(contact_url(gone)).content.decode()
    assert "Enable as portal user" not in page
    assert "Restore the contact first." in page


def test_a_merged_contact_points_to_its_winner_and_is_not_restored(admin_client, account):
    winner = ContactFactory(portal_account=account, name="Will Winner")
    loser = ContactFactory(
        portal_account=account, name="Lou Loser", merged_into=winner, deleted_at=timezone.now()
    )
    page = admin_client.get(contact_url(loser)).content.decode()
    assert f'Merged into <a href="{contact_url(winner)}">Will Winner</a>' in page
    assert "Restore contact" not in page
    response = admin_client.post(contact_url(loser, "contact-restore"))
    assert response.status_code == 409
    assert "was merged into Will Winner" in response.content.decode()
    assert fresh(loser).deleted_at is not None


# --- the orphaned users page ---


def test_the_page_lists_orphans_with_when_their_contact_was_deleted(
    admin_client, account, orphan, partner_role
):
    PortalUserFactory(portal_account=account, role=partner_role, name="Liv Live")
    PortalUserFactory(portal_account=account, name="Emil Employee", user_type=UserType.EMPLOYEE)
    page = admin_client.get(orphans_url(account)).content.decode()
    assert "Jane Doe" in page
    assert orphan.contact.contact_id in page
    assert f'datetime="{fresh(orphan.contact).deleted_at:%Y-%m-%dT%H:%M:%S}' in page
    assert "Liv Live" not in page
    assert "Emil Employee" not in page
    assert "Restore contact" in page
    assert "Associate with another contact" in page


def test_the_newest_deletions_come_first_and_a_big_account_is_counted_up_to_a_cap(
    admin_client, account, partner_role, monkeypatch
):
    from contacts.views import orphaned_users

    monkeypatch.setattr(orphaned_users, "COUNT_CAP", 3)
    monkeypatch.setattr(orphaned_users, "PAGE_SIZE", 2)
    now = timezone.now()
    for days_ago, name in enumerate(["Dee Day0", "Dan Day1", "Dot Day2", "Don Day3", "Del Day4"]):
        user = PortalUserFactory(portal_account=account, role=partner_role, name=name)
        Contact.objects.filter(pk=user.contact.pk).update(deleted_at=now - timedelta(days=days_ago))

    first = admin_client.get(orphans_url(account)).content.decode()
    assert first.index("Dee Day0") < first.index("Dan Day1")
    assert "Dot Day2" not in first
    assert "more than 3 users: the 3 whose contacts were deleted last are listed" in first
    second = admin_client.get(orphans_url(account), {"page": 2}).content.decode()
    assert "Dot Day2" in second
    assert "Don Day3" not in second


def test_under_the_cap_every_page_keeps_the_newest_deletions_first(
    admin_client, account, partner_role, monkeypatch
):
    from contacts.views import orphaned_users

    monkeypatch.setattr(orphaned_users, "PAGE_SIZE", 2)
    now = timezone.now()
    names = ["Dee Day0", "Dan Day1", "Dot Day2", "Don Day3", "Del Day4"]
    for days_ago, name in enumerate(names):
        user = PortalUserFactory(portal_account=account, role=partner_role, name=name)
        Contact.objects.filter(pk=user.contact.pk).update(deleted_at=now - timedelta(days=days_ago))

    pages = [
        admin_client.get(orphans_url(account), {"page": page}).content.decode()
        for page in (1, 2, 3)
    ]
    shown = [[name for name in names if name in page] for page in pages]
    assert shown == [["Dee Day0", "Dan Day1"], ["Dot Day2", "Don Day3"], ["Del Day4"]]
    assert pages[0].index("Dee Day0") < pages[0].index("Dan Day1")
    assert "more than" not in pages[0]


def test_no_orphans_says_so(admin_client, account, jane):
    page = admin_client.get(orphans_url(account)).content.decode()
    assert "No orphaned users" in page


def test_orphans_of_another_account_stay_hidden(
    account_admin_client, other_account, account, orphan
):
    other = PortalUserFactory(portal_account=other_account, name="Gil Globex")
    deleted(other.contact)
    assert account_admin_client.get(orphans_url(other_account)).status_code == 404
    assert "Gil Globex" not in account_admin_client.get(orphans_url(account)).content.decode()


def test_fix_by_restoring_the_contact(admin_client, account, orphan):
    url = reverse("orphan-restore-contact", args=[account.slug, orphan.pk])
    response = admin_client.post(url, headers=HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Contact Jane Doe restored. Jane Doe can sign in again as jane@example.com." in body
    assert "No orphaned users" in body
    assert fresh(orphan.contact).deleted_at is None
    assert fresh(orphan).is_active


def test_restoring_a_contact_that_is_back_already_changes_nothing(admin_client, account, jane):
    url = reverse("orphan-restore-contact", args=[account.slug, jane.pk])
    response = admin_client.post(url)
    assert response.status_code == 409
    assert "Jane Doe is not an orphaned user" in response.content.decode()


@pytest.fixture
def candidates(account, partner_role, other_account):
    """Contacts of Wayne Enterprises and around it; only the first two may take Jane."""
    make = lambda **kw: ContactFactory(  # noqa: E731
        **{"portal_account": account, "crm_account_name": "Wayne Enterprises", **kw}
    )
    taken = PortalUserFactory(portal_account=account, role=partner_role, name="Tom Taken")
    taken.contact.crm_account_name = "Wayne Enterprises"
    taken.contact.save()
    return {
        "bruce": make(name="Bruce Wayne", email="bruce@wayne.example"),
        "alfred": make(name="Alfred Pennyworth", email="alfred@wayne.example"),
        "gone": make(name="Gone Guy", email="gone@wayne.example", deleted_at=timezone.now()),
        "elsewhere": make(name="Stark Person", crm_account_name="Stark Industries"),
        "foreign": ContactFactory(
            portal_account=other_account, name="Globex Wayne", crm_account_name="Wayne Enterprises"
        ),
        "taken": taken.contact,
    }


def test_candidates_are_live_contacts_of_the_same_crm_account_without_a_user(
    admin_client, orphan, candidates
):
    page = admin_client.get(associate_url(orphan)).content.decode()
    assert "Bruce Wayne" in page
    assert "Alfred Pennyworth" in page
    for name in ["Gone Guy", "Stark Person", "Globex Wayne", "Tom Taken"]:
        assert name not in page


def test_search_candidates_by_email(admin_client, orphan, candidates):
    response = admin_client.get(associate_url(orphan, q="bruce@"), headers=HTMX)
    body = response.content.decode()
    assert "<html" not in body
    assert "Bruce Wayne" in body
    assert "Alfred Pennyworth" not in body
    body = admin_client.get(associate_url(orphan, q="nobody")).content.decode()
    assert "No contact of Wayne Enterprises without a portal user matches “nobody”." in body


def test_associate_asks_first_then_moves_the_user(admin_client, account, orphan, candidates):
    bruce = candidates["bruce"]
    page = admin_client.get(associate_url(orphan, contact=bruce.pk)).content.decode()
    assert "Associate Jane Doe with Bruce Wayne?" in page
    assert f'name="confirmed" value="contact-{bruce.pk}"' in page
    assert fresh(orphan).contact_id == orphan.contact.pk

    response = admin_client.post(associate_url(orphan), {"contact": bruce.pk})
    assert response.status_code == 400  # not confirmed
    assert fresh(orphan).contact_id == orphan.contact.pk

    response = admin_client.post(
        associate_url(orphan), {"contact": bruce.pk, "confirmed": f"contact-{bruce.pk}"}
    )
    assert response.status_code == 302
    assert response.url == orphans_url(account)
    moved = fresh(orphan)
    assert moved.contact == bruce
    assert moved.is_active
    assert moved.state == UserState.ENABLED
    page = admin_client.get(response.url).content.decode()
    # The user takes the contact's name with it, and its email (their sign-in name) once that
    # address confirms it.
    assert (moved.name, moved.email, moved.pending_email) == (
        "Bruce Wayne",
        orphan.email,
        "bruce@wayne.example",
    )
    assert (
        "Jane Doe is now associated with the contact Bruce Wayne. "
        f"Bruce Wayne can sign in again as {orphan.email}, and as bruce@wayne.example once that "
        "address confirms it (a link went to it)."
    ) in page
    assert AuditEvent.objects.filter(subject_user=moved).exists()  # the move is audited


def test_the_mirror_refuses_a_contact_of_another_crm_account(admin_client, orphan, candidates):
    stark = candidates["elsewhere"]
    response = admin_client.post(
        associate_url(orphan), {"contact": stark.pk, "confirmed": f"contact-{stark.pk}"}
    )
    assert response.status_code == 409
    assert fresh(orphan).contact_id == orphan.contact.pk


def test_a_contact_of_another_portal_account_is_404(admin_client, orphan, candidates):
    foreign = candidates["foreign"]
    response = admin_client.post(
        associate_url(orphan), {"contact": foreign.pk, "confirmed": f"contact-{foreign.pk}"}
    )
    assert response.status_code == 404
    assert admin_client.get(associate_url(orphan, contact="x")).status_code == 404
    assert fresh(orphan).contact_id == orphan.contact.pk
    assert not User.objects.filter(contact=foreign).exists()


# --- the dashboard ---


def test_the_dashboard_warns_and_links_to_the_orphaned_users(admin_client, account, orphan):
    page = admin_client.get(reverse("dashboard", args=[account.slug])).content.decode()
    assert "1 user cannot sign in because their CRM contact was deleted." in page
    assert f'<a href="{orphans_url(account)}">Fix it on the Orphaned users page</a>' in page


def test_no_warning_without_orphans(admin_client, account, jane):
    page = admin_client.get(reverse("dashboard", args=[account.slug])).content.decode()
    assert "Fix it on the Orphaned users page" not in page
    assert Contact.objects.count() == 1
