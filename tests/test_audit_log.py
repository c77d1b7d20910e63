import pytest
from django.urls import reverse

from accounts import audit, lifecycle
from accounts.models import AuditEvent, User
from tests.factories import PortalUserFactory, StaffFactory

GLOBAL_LOG = reverse("audit-log-global")


def account_log(slug="acme"):
    return reverse("audit-log", args=[slug])


def rows(response):
    return response.content.decode().count("<time datetime=")


@pytest.fixture
def grace(account, partner_role):
    return PortalUserFactory(
        portal_account=account, role=partner_role, name="Grace Hopper", email="grace@acme.example"
    )


@pytest.fixture
def gus_user(other_account):
    return PortalUserFactory(
        portal_account=other_account, name="Gus User", email="gus@globex.example"
    )


def many_events(user, by, count):
    for _ in range(count):
        audit.record(
            "disable",
            by=by,
            subject=user,
            before={"state": "enabled"},
            after={"state": "disabled"},
            ip="10.9.9.9",
        )


def test_the_log_says_who_did_what_to_whom_from_where_and_what_changed(
    technician_client, technician, grace, customer_role
):
    lifecycle.disable(grace, by=technician, ip="10.1.2.3")
    lifecycle.change_role(grace, customer_role, by=technician, ip="10.1.2.4")

    page = technician_client.get(account_log()).content.decode()

    assert "Disabled" in page
    assert "state:</span> enabled → disabled" in page
    assert "Changed role" in page
    assert "role:</span> Partner User → Customer User" in page
    assert 'Theo Tech<div class="audit-email">theo@mssp.example</div>' in page
    assert 'Grace Hopper<div class="audit-email">grace@acme.example</div>' in page
    assert "10.1.2.3" in page
    assert "Success" in page
    # Unchanged values are not repeated.
    assert "account admin:" not in page


def test_an_invitation_shows_the_new_values(technician_client, technician, account, partner_role):
    lifecycle.invite(
        account,
        role=partner_role,
        by=technician,
        name="Alan Turing",
        email="alan@acme.example",
    )
    page = technician_client.get(account_log()).content.decode()
    assert "Invited" in page
    assert "state:</span> unconfirmed" in page
    assert "role:</span> Partner User" in page


def test_an_account_admin_sees_their_own_log(account_admin_client, technician, grace):
    lifecycle.disable(grace, by=technician)
    response = account_admin_client.get(account_log())
    assert response.status_code == 200
    assert "Grace Hopper" in response.content.decode()


def test_another_accounts_log_is_not_found(account_admin_client, technician, gus_user):
    lifecycle.disable(gus_user, by=technician)
    assert account_admin_client.get(account_log("globex")).status_code == 404


def test_an_accounts_log_shows_only_that_account(technician_client, technician, grace, gus_user):
    lifecycle.disable(grace, by=technician)
    lifecycle.disable(gus_user, by=technician)
    page = technician_client.get(account_log()).content.decode()
    assert "Grace Hopper" in page
    assert "Gus User" not in page
    assert "Portal account</th>" not in page


def test_the_global_log_shows_every_account(admin_client, technician, grace, gus_user):
    lifecycle.disable(grace, by=technician)
    lifecycle.disable(gus_user, by=technician)
    page = admin_client.get(GLOBAL_LOG).content.decode()
    assert "Portal account</th>" in page
    assert "Acme Portal" in page
    assert "Globex Portal" in page
    assert "Grace Hopper" in page
    assert "Gus User" in page


@pytest.mark.parametrize("persona", ["technician_client", "account_admin_client"])
def test_the_global_log_is_for_mssp_admins_only(persona, request):
    assert request.getfixturevalue(persona).get(GLOBAL_LOG).status_code == 403


def test_signed_out_visitors_are_sent_to_sign_in(client, account):
    response = client.get(account_log())
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_filter_by_action(technician_client, technician, grace, customer_role):
    lifecycle.change_role(grace, customer_role, by=technician)
    lifecycle.disable(grace, by=technician)

    response = technician_client.get(account_log(), {"action": "change_role"})

    page = response.content.decode()
    assert rows(response) == 1
    assert "role:</span> Partner User → Customer User" in page
    assert '<option value="change_role" selected>Changed role</option>' in page


def test_filter_by_person_matches_who_acted_or_on_whom(
    technician_client, technician, account_admin, grace, partner_role, account
):
    alan = PortalUserFactory(portal_account=account, role=partner_role, name="Alan Turing")
    lifecycle.disable(grace, by=technician)
    lifecycle.disable(alan, by=account_admin)

    assert rows(technician_client.get(account_log(), {"person": "grace"})) == 1
    assert rows(technician_client.get(account_log(), {"person": "ada admin"})) == 1
    assert rows(technician_client.get(account_log(), {"person": "theo@mssp"})) == 1
    assert rows(technician_client.get(account_log(), {"person": "nobody"})) == 0
    page = technician_client.get(account_log(), {"person": "nobody"}).content.decode()
    assert "No events match these filters." in page


def test_fifty_events_a_page_and_the_filters_follow_the_pages(technician_client, technician, grace):
    many_events(grace, technician, 55)

    first = technician_client.get(account_log(), {"action": "disable"})
    second = technician_client.get(account_log(), {"action": "disable", "page": 2})

    assert rows(first) == 50
    assert rows(second) == 5
    assert "action=disable&amp;page=2" in first.content.decode()
    assert "Page 2 of 2" in second.content.decode()


def test_an_htmx_request_gets_only_the_rows(technician_client, technician, grace):
    lifecycle.disable(grace, by=technician)
    response = technician_client.get(
        account_log(), {"person": "grace"}, headers={"HX-Request": "true"}
    )
    page = response.content.decode()
    assert "Grace Hopper" in page
    assert "<html" not in page
    assert "<form" not in page
    assert "HX-Request" in response["Vary"]


def test_an_htmx_history_restore_gets_the_whole_page(technician_client, account):
    response = technician_client.get(
        account_log(), headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert "<html" in response.content.decode()


@pytest.mark.parametrize("count", [3, 60])
def test_the_account_log_makes_the_same_number_of_queries_however_many_events(
    technician_client, technician, grace, count, django_assert_num_queries
):
    many_events(grace, technician, count)
    # session, user, portal account, capped count, page of events
    with django_assert_num_queries(6):  # +1: the session's second-factor device
        assert technician_client.get(account_log()).status_code == 200


@pytest.mark.parametrize("count", [3, 60])
def test_the_global_log_makes_the_same_number_of_queries_however_many_events(
    admin_client, technician, grace, gus_user, count, django_assert_num_queries
):
    many_events(grace, technician, count)
    many_events(gus_user, technician, count)
    # session, user, capped count, page of events with their portal accounts
    with django_assert_num_queries(5):  # +1: the session's second-factor device
        assert admin_client.get(GLOBAL_LOG).status_code == 200


def test_the_count_stops_at_a_cap_and_says_more_than(
    technician_client, technician, grace, monkeypatch
):
    from accounts.views import audit as audit_views

    monkeypatch.setattr(audit_views, "COUNT_CAP", 4)
    many_events(grace, technician, 6)
    page = technician_client.get(account_log()).content.decode()
    assert "More than 4 events" in page


def test_deleting_a_user_keeps_whom_their_events_were_about(
    admin_client, technician, grace, account
):
    """History is not rewritten: the events keep the deleted user's id (SET_NULL used to clear
    it, an UPDATE per event), and the logs still show them by name."""
    grace_id = grace.pk
    lifecycle.disable(grace, by=technician)
    lifecycle.delete(grace, by=technician)

    events = AuditEvent.objects.filter(subject_user_id=grace_id).order_by("pk")
    assert [event.action for event in events] == ["disable", "delete"]
    assert {event.actor_id for event in events} == {technician.pk}
    for url in (account_log(), GLOBAL_LOG):
        page = admin_client.get(url).content.decode()
        assert page.count("Grace Hopper") >= 2


def test_events_by_someone_deleted_since_still_show(admin_client, mssp_admin, grace, account):
    """An event may name a user who is gone (no database constraint): the logs, the user's page
    and the support admin read it without failing."""
    departed = StaffFactory(name="Departed Tech", email="departed@mssp.example")
    lifecycle.disable(grace, by=departed)
    departed.delete()

    event = AuditEvent.objects.get(action="disable")
    assert event.actor_id is not None
    assert not User.objects.filter(pk=event.actor_id).exists()
    for url in (
        account_log(),
        GLOBAL_LOG,
        reverse("user", args=[account.slug, grace.pk]),
    ):
        response = admin_client.get(url)
        assert response.status_code == 200
        assert "Departed Tech" in response.content.decode()
    support = reverse("admin:accounts_auditevent_change", args=[event.pk])
    assert admin_client.get(support).status_code == 200


def test_an_account_admin_sees_where_their_people_acted_from_not_mssp_staff(
    account_admin_client, account_admin, technician, grace
):
    """Staff addresses are MSSP-only: the account's log shows an MSSP technician's change
    without their IP and browser, and the account admin's own with them."""
    audit.record("disable", by=technician, subject=grace, ip="203.0.113.7", after={})
    audit.record("enable", by=account_admin, subject=grace, ip="198.51.100.9", after={})

    page = account_admin_client.get(account_log()).content.decode()

    assert "198.51.100.9" in page
    assert "203.0.113.7" not in page


def test_mssp_staff_see_every_address(technician_client, technician, grace):
    audit.record("disable", by=technician, subject=grace, ip="203.0.113.7", after={})
    assert "203.0.113.7" in technician_client.get(account_log()).content.decode()
