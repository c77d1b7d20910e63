"""Two admins acting on the same portal user at the same moment: one of them wins, the other is
told plainly what happened ("Ada Larsen was deleted meanwhile.") with a 409, or a per-row
message on the bulk page; nobody gets a server error and the data stays as the winner left it.

The first tests run anywhere: they call each lifecycle verb with a user object read before
someone else deleted the row, as the losing request does. The others are PostgreSQL only (as in
tests/test_license_race.py): each request runs on its own thread, connection and transaction,
and the first one holds the user's row lock until PostgreSQL reports the second one waiting for
it, so the interleaving is forced rather than hoped for."""

import pytest
from django.db import IntegrityError
from django.db.models.signals import pre_save
from django.test import Client
from django.urls import reverse

from accounts import lifecycle
from accounts.errors import LifecycleError
from accounts.models import AuditEvent, User, UserState
from tests.conftest import api_client_for, console_sign_in
from tests.factories import PortalUserFactory, RoleFactory
from tests.test_license_race import first_holds_the_seat_while_second_asks, outcome

GONE = "Ada Larsen was deleted meanwhile."
CHANGED = "Ada Larsen was changed meanwhile: reload and try again."


@pytest.fixture
def ada(account, partner_role):
    return PortalUserFactory(
        portal_account=account, role=partner_role, name="Ada Larsen", email="ada@acme.example"
    )


@pytest.fixture
def other_role(account):
    return RoleFactory(portal_account=account, name="Partner Viewer")


# --- Anywhere: a verb on a user deleted meanwhile ---

VERBS = {
    "activate": lambda user, by, role: lifecycle.activate(user, "a new long passphrase"),
    "set_new_password": lambda user, by, role: lifecycle.set_new_password(
        user, "a new long passphrase"
    ),
    "disable": lambda user, by, role: lifecycle.disable(user, by=by),
    "enable": lambda user, by, role: lifecycle.enable(user, by=by),
    "delete": lambda user, by, role: lifecycle.delete(user, by=by),
    "reinvite": lambda user, by, role: lifecycle.reinvite(user, by=by),
    "reset_password": lambda user, by, role: lifecycle.reset_password(user, by=by),
    "change_role": lambda user, by, role: lifecycle.change_role(user, role, by=by),
    "make_account_admin": lambda user, by, role: lifecycle.make_account_admin(user, by=by),
    "send_login_code": lambda user, by, role: lifecycle.send_login_code(user, by=by),
    "send_login_email": lambda user, by, role: lifecycle.send_login_email(user, by=by),
    "issue_magic_link": lambda user, by, role: lifecycle.issue_magic_link(user, by=by),
    "end_sessions": lambda user, by, role: lifecycle.end_sessions(user, by=by),
}


@pytest.mark.parametrize("verb", VERBS)
def test_a_verb_on_a_user_deleted_meanwhile_says_so(ada, technician, other_role, verb):
    User.objects.filter(pk=ada.pk).delete()  # another admin's delete, committed
    events = AuditEvent.objects.count()

    with pytest.raises(LifecycleError) as refused:
        VERBS[verb](ada, technician, other_role)  # `ada` as this request read it before

    assert str(refused.value) == GONE
    assert AuditEvent.objects.count() == events


def test_a_constraint_broken_by_a_concurrent_change_says_reload(ada, technician, other_role):
    def concurrent_change_breaks_a_constraint(sender, instance, **kwargs):
        if instance.pk == ada.pk:
            raise IntegrityError("a constraint a concurrent change broke")

    pre_save.connect(concurrent_change_breaks_a_constraint, sender=User)
    try:
        with pytest.raises(LifecycleError) as refused:
            lifecycle.change_role(ada, other_role, by=technician)
    finally:
        pre_save.disconnect(concurrent_change_breaks_a_constraint, sender=User)

    assert str(refused.value) == CHANGED
    ada.refresh_from_db()
    assert ada.role != other_role  # nothing of the refused change is left


# --- PostgreSQL: two requests at once ---


@pytest.fixture
def two_admins(mssp_admin, technician):
    """Two MSSP staff, each in their own browser session."""
    return console_sign_in(Client(), mssp_admin), console_sign_in(Client(), technician)


def user_action(client, user, action, **data):
    url = reverse("user-action", args=[user.portal_account.slug, user.pk, action])
    return lambda: client.post(url, data)


def card_action(client, user, action):
    url = reverse("contact-portal-user", args=[user.portal_account.slug, user.contact_id, action])
    return lambda: client.post(url, {"confirmed": "1"})


def bulk(client, account, action, users):
    data = {"action": action, "ids": [u.pk for u in users], "confirmed": "1"}
    return lambda: client.post(reverse("users-bulk", args=[account.slug]), data)


def both_answered(first, second):
    assert first.error is None, outcome(first)
    assert second.error is None, outcome(second)
    return first.result, second.result


def gone(user):
    return not User.objects.filter(pk=user.pk).exists()


# (action, the state Ada is in for it, extra form data)
RACING_DELETE = {
    "disable": (UserState.ENABLED, {}),
    "enable": (UserState.DISABLED, {}),
    "reset-password": (UserState.ENABLED, {}),
    "change-role": (UserState.ENABLED, {"role": "other"}),
    "delete": (UserState.DISABLED, {}),
}


def racing_delete(ada, other_role, action):
    state, data = RACING_DELETE[action]
    ada.state = state
    ada.save(update_fields=["state"])
    return {key: other_role.pk if value == "other" else value for key, value in data.items()}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("action", RACING_DELETE)
def test_an_action_waiting_on_a_delete_is_409_deleted_meanwhile(
    ada, other_role, two_admins, action
):
    data = racing_delete(ada, other_role, action)
    mia, theo = two_admins

    first, second = first_holds_the_seat_while_second_asks(
        user_action(mia, ada, "delete"), user_action(theo, ada, action, **data)
    )

    deleted, refused = both_answered(first, second)
    assert deleted.status_code == 302
    assert refused.status_code == 409
    assert GONE in refused.content.decode()
    assert gone(ada)
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["delete"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("action", [a for a in RACING_DELETE if a != "delete"])
def test_a_delete_waiting_on_an_action_deletes_after_it(ada, other_role, two_admins, action):
    data = racing_delete(ada, other_role, action)
    mia, theo = two_admins

    first, second = first_holds_the_seat_while_second_asks(
        user_action(mia, ada, action, **data), user_action(theo, ada, "delete")
    )

    done, deleted = both_answered(first, second)
    assert (done.status_code, deleted.status_code) == (302, 302)
    assert gone(ada)
    actions = list(AuditEvent.objects.order_by("pk").values_list("action", flat=True))
    assert actions == [action.replace("-", "_"), "delete"]


@pytest.fixture
def fifty(account, partner_role):
    return [
        PortalUserFactory(portal_account=account, role=partner_role, name=f"Ada Larsen {n:02}")
        for n in range(50)
    ]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_bulk_disable_waiting_on_a_bulk_delete_reports_each_user_deleted(
    account, fifty, two_admins
):
    mia, theo = two_admins

    first, second = first_holds_the_seat_while_second_asks(
        bulk(mia, account, "delete", fifty), bulk(theo, account, "disable", fifty)
    )

    deleted, disabled = both_answered(first, second)
    assert (deleted.status_code, disabled.status_code) == (302, 302)
    assert not User.objects.filter(pk__in=[u.pk for u in fifty]).exists()
    page = theo.get(disabled.url).content.decode()
    # The first 20 vanished users are named one by one, the rest counted.
    for user in fifty[:20]:
        assert f"{user.name} was deleted meanwhile." in page
        assert f"{user.name}: {user.name}" not in page  # named once
    assert "…and 30 more were not changed." in page
    assert "Access disabled for" not in page
    assert not AuditEvent.objects.filter(action="disable").exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_bulk_delete_waiting_on_a_bulk_disable_deletes_them_all(account, fifty, two_admins):
    mia, theo = two_admins

    first, second = first_holds_the_seat_while_second_asks(
        bulk(mia, account, "disable", fifty), bulk(theo, account, "delete", fifty)
    )

    disabled, deleted = both_answered(first, second)
    assert (disabled.status_code, deleted.status_code) == (302, 302)
    assert not User.objects.filter(pk__in=[u.pk for u in fifty]).exists()
    assert AuditEvent.objects.filter(action="disable").count() == 50
    assert AuditEvent.objects.filter(action="delete").count() == 50


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_cards_action_waiting_on_a_delete_is_409_deleted_meanwhile(ada, two_admins):
    mia, theo = two_admins

    first, second = first_holds_the_seat_while_second_asks(
        user_action(mia, ada, "delete"), card_action(theo, ada, "disable")
    )

    deleted, refused = both_answered(first, second)
    assert deleted.status_code == 302
    assert refused.status_code == 409
    assert GONE in refused.content.decode()
    assert gone(ada)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_delete_on_the_card_waiting_on_an_enable_deletes_after_it(ada, two_admins):
    ada.state = UserState.DISABLED
    ada.save(update_fields=["state"])
    mia, theo = two_admins

    first, second = first_holds_the_seat_while_second_asks(
        user_action(mia, ada, "enable"), card_action(theo, ada, "delete")
    )

    enabled, deleted = both_answered(first, second)
    # The card offered delete for the disabled user it read; once the enable has committed the
    # delete goes ahead (delete is allowed in every state), so the user is gone.
    assert (enabled.status_code, deleted.status_code) == (302, 302)
    assert gone(ada)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ending_sessions_waiting_on_a_delete_is_deleted_meanwhile(ada, technician):
    # The lifecycle verb the users page's and the card's "End sessions" should call: it waits
    # for the delete's lock instead of writing an audit event for a user already gone.
    first, second = first_holds_the_seat_while_second_asks(
        lambda: lifecycle.delete(ada, by=technician),
        lambda: lifecycle.end_sessions(ada, by=technician),
    )

    assert first.error is None, outcome(first)
    assert isinstance(second.error, LifecycleError), outcome(second)
    assert str(second.error) == GONE
    assert gone(ada)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_api_action_waiting_on_a_delete_is_409_deleted_meanwhile(ada, api_token, two_admins):
    mia, _ = two_admins
    api = api_client_for(api_token.secret)
    url = reverse("api-portal-user-disable", args=[ada.portal_account.slug, ada.contact.contact_id])

    first, second = first_holds_the_seat_while_second_asks(
        user_action(mia, ada, "delete"), lambda: api.post(url, content_type="application/json")
    )

    deleted, refused = both_answered(first, second)
    assert deleted.status_code == 302
    assert refused.status_code == 409
    assert refused.json()["error"] == GONE
    assert gone(ada)
