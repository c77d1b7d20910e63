"""The console's Webhooks pages: the account's admin and MSSP staff add, edit, rotate and delete
endpoints and read each one's delivery log, newest first, with Redeliver; the secret shows once;
another account's admin gets 404 for every page and action and changes nothing."""

import pytest
from django.urls import reverse

from accounts import lifecycle
from accounts.models import AuditEvent
from tests.factories import PortalUserFactory
from tests.webhook_receiver import Receiver
from webhooks.models import Delivery, Endpoint
from webhooks.views import LOG_PAGE_SIZE

EVENTS = ["user.disabled", "user.enabled"]


def add(client, slug="acme", **fields):
    data = {"url": "https://crm.example.com/hooks", "events": EVENTS, "active": "on", **fields}
    return client.post(reverse("webhook-endpoints", args=[slug]), data)


@pytest.fixture
def hook(account):
    return Endpoint.objects.create(
        portal_account=account, url="https://crm.example.com/hooks", events=EVENTS
    )


def delivery_for(hook, n=0, **fields):
    return Delivery.objects.create(
        portal_account=hook.portal_account,
        endpoint=hook,
        event_id=f"evt_{n:032x}",
        event_type="user.disabled",
        payload={"id": f"evt_{n:032x}", "n": n},
        **fields,
    )


@pytest.mark.parametrize("who", ["account_admin_client", "technician_client", "admin_client"])
def test_console_people_add_an_endpoint_and_see_its_secret_once(request, account, who):
    client = request.getfixturevalue(who)

    response = add(client, description="Salesforce flow")

    assert response.status_code == 200
    endpoint = Endpoint.objects.get(portal_account=account)
    assert endpoint.events == EVENTS
    assert endpoint.description == "Salesforce flow"
    assert endpoint.secret.startswith("whsec_")
    assert endpoint.secret in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    page = client.get(reverse("webhook-endpoints", args=["acme"])).content.decode()
    assert "https://crm.example.com/hooks" in page
    assert endpoint.secret_hint in page
    assert endpoint.secret not in page
    event = AuditEvent.objects.get(action="create_webhook_endpoint")
    assert event.portal_account == account
    assert endpoint.secret not in event.detail


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": "http://crm.example.com/hooks"}, "Use an https:// URL"),
        ({"url": "https://127.0.0.1/hooks"}, "cannot be sent to 127.0.0.1"),
        ({"url": "https://10.0.0.8/hooks"}, "cannot be sent to 10.0.0.8"),
        ({"url": "https://[::1]/hooks"}, "cannot be sent to ::1"),
        ({"url": "https://localhost/hooks"}, "cannot be sent to this machine"),
        ({"url": "https://user:pw@crm.example.com/"}, "no user name or password"),
        ({"url": "crm.example.com"}, "Enter a full URL"),
        ({"url": "https://crm.example.com/\x00"}, "Null characters are not allowed"),
        ({"url": "https://crm.example.com/" + "a" * 3000}, "Keep the URL to 2,000"),
        ({"events": []}, "Pick at least one event"),
        ({"events": ["user.exploded"]}, "Pick events from the list"),
    ],
)
def test_a_bad_endpoint_is_a_plain_message_and_changes_nothing(
    account_admin_client, account, fields, message
):
    response = add(account_admin_client, **fields)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Endpoint.objects.exists()


def test_edit_rotate_and_delete(account_admin_client, hook, account):
    url = reverse("webhook-endpoint", args=["acme", hook.pk])
    response = account_admin_client.post(
        url, {"url": "https://crm.example.com/v2", "events": ["user.deleted"]}
    )
    assert response.status_code == 302
    hook.refresh_from_db()
    assert (hook.url, hook.events, hook.active) == (
        "https://crm.example.com/v2",
        ["user.deleted"],
        False,
    )

    old = hook.secret
    response = account_admin_client.post(reverse("webhook-endpoint-rotate", args=["acme", hook.pk]))
    hook.refresh_from_db()
    assert hook.secret != old
    assert hook.previous_secret == old
    assert hook.secret in response.content.decode()
    assert "no-store" in response["Cache-Control"]

    response = account_admin_client.post(reverse("webhook-endpoint-delete", args=["acme", hook.pk]))
    assert response.status_code == 302
    assert not Endpoint.objects.exists()
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {
        "update_webhook_endpoint",
        "rotate_webhook_secret",
        "delete_webhook_endpoint",
    } <= actions


def test_the_delivery_log_pages_newest_first(
    account_admin_client, hook, django_assert_max_num_queries
):
    for n in range(LOG_PAGE_SIZE + 5):
        delivery_for(hook, n, status="failed", attempts=8, response_code=500)
    url = reverse("webhook-deliveries", args=["acme", hook.pk])

    first = account_admin_client.get(url)
    page = first.content.decode()
    assert first.status_code == 200
    newest = f"evt_{LOG_PAGE_SIZE + 4:032x}"
    assert page.index(newest) < page.index(f"evt_{LOG_PAGE_SIZE + 3:032x}")
    assert f"evt_{4:032x}" not in page
    assert "?before=" in page
    before = first.context["older"]
    older = account_admin_client.get(url, {"before": before}).content.decode()
    assert f"evt_{0:032x}" in older
    assert newest not in older
    assert account_admin_client.get(url, {"before": "nonsense"}).status_code == 200


def test_redeliver_sends_the_same_event_again_to_a_real_receiver(
    account_admin_client, account, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    with Receiver([200]) as receiver:
        hook = Endpoint.objects.create(portal_account=account, url=receiver.url, events=EVENTS)
        failed = delivery_for(hook, 7, status="failed", attempts=8, response_code=500)
        url = reverse("webhook-redeliver", args=["acme", hook.pk, failed.pk])
        with django_capture_on_commit_callbacks(execute=True):
            response = account_admin_client.post(url)

    assert response.status_code == 302
    again = Delivery.objects.exclude(pk=failed.pk).get()
    assert (again.event_id, again.redelivery_of, again.status) == (
        failed.event_id,
        failed,
        "delivered",
    )
    assert [r["headers"]["webhook-id"] for r in receiver.requests] == [failed.event_id]
    log = account_admin_client.get(reverse("webhook-deliveries", args=["acme", hook.pk]))
    assert "redelivery" in log.content.decode()
    assert AuditEvent.objects.filter(action="redeliver_webhook").count() == 1


def test_another_accounts_admin_gets_404_everywhere_and_changes_nothing(
    other_admin, hook, technician
):
    from tests.conftest import _client_for

    stranger = _client_for(other_admin)
    delivery = delivery_for(hook, status="failed")
    gets = [
        reverse("webhook-endpoints", args=["acme"]),
        reverse("webhook-endpoint", args=["acme", hook.pk]),
        reverse("webhook-deliveries", args=["acme", hook.pk]),
        # Their own account's slug with Acme's endpoint id.
        reverse("webhook-endpoint", args=["globex", hook.pk]),
        reverse("webhook-deliveries", args=["globex", hook.pk]),
    ]
    posts = [
        reverse("webhook-endpoint", args=["globex", hook.pk]),
        reverse("webhook-endpoint-rotate", args=["globex", hook.pk]),
        reverse("webhook-endpoint-delete", args=["globex", hook.pk]),
        reverse("webhook-redeliver", args=["globex", hook.pk, delivery.pk]),
        reverse("webhook-endpoint-delete", args=["acme", hook.pk]),
    ]
    secret = hook.secret
    for url in gets:
        assert stranger.get(url).status_code == 404, url
    for url in posts:
        response = stranger.post(url, {"url": "https://evil.example/", "events": EVENTS})
        assert response.status_code == 404, url
    hook.refresh_from_db()
    assert (hook.url, hook.secret) == ("https://crm.example.com/hooks", secret)
    assert Delivery.objects.count() == 1
    # And Globex's own list does not show Acme's endpoint.
    own = stranger.get(reverse("webhook-endpoints", args=["globex"])).content.decode()
    assert "crm.example.com" not in own


def test_a_portal_user_who_is_not_the_admin_cannot_open_the_pages(account, hook, client):
    from tests.conftest import _client_for

    user = PortalUserFactory(portal_account=account)
    response = _client_for(user).get(reverse("webhook-endpoints", args=["acme"]))
    assert response.status_code in (302, 403)
    anonymous = client.get(reverse("webhook-endpoints", args=["acme"]))
    assert anonymous.status_code == 302


def test_an_endpoint_turned_off_is_not_sent_to(account_admin_client, hook, account, technician):
    user = PortalUserFactory(portal_account=account)
    account_admin_client.post(
        reverse("webhook-endpoint", args=["acme", hook.pk]),
        {"url": hook.url, "events": EVENTS},  # "active" unticked
    )
    lifecycle.disable(user, by=technician)
    assert not Delivery.objects.exists()
