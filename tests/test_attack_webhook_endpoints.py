"""Adding an endpoint twice (a double click, two admins): one endpoint, and a plain message."""

from django.urls import reverse

from webhooks.models import Endpoint

DATA = {"url": "https://crm.acme.example/hooks", "events": ["user.disabled"], "active": "on"}


def test_the_same_url_twice_is_refused_with_a_plain_message(admin_client, account):
    url = reverse("webhook-endpoints", args=[account.slug])

    first = admin_client.post(url, DATA)
    second = admin_client.post(url, DATA)

    assert first.status_code == 200
    assert second.status_code == 400
    assert "already sends to this URL" in second.content.decode()
    assert Endpoint.objects.filter(portal_account=account).count() == 1


def test_moving_an_endpoint_onto_anothers_url_is_refused(admin_client, account):
    Endpoint.objects.create(portal_account=account, url=DATA["url"], events=["user.disabled"])
    other = Endpoint.objects.create(
        portal_account=account, url="https://crm.acme.example/other", events=["user.disabled"]
    )

    response = admin_client.post(reverse("webhook-endpoint", args=[account.slug, other.pk]), DATA)

    assert response.status_code == 400
    other.refresh_from_db()
    assert other.url == "https://crm.acme.example/other"


def test_another_account_may_use_the_same_url(admin_client, account, other_account):
    Endpoint.objects.create(portal_account=other_account, url=DATA["url"], events=["user.disabled"])

    response = admin_client.post(reverse("webhook-endpoints", args=[account.slug]), DATA)

    assert response.status_code == 200
    assert Endpoint.objects.filter(portal_account=account).count() == 1


def test_a_delivery_still_being_tried_is_not_redelivered(admin_client, account):
    """Redeliver is for a finished delivery: on a pending one (a redelivery itself, say) each
    click queued one more copy of the event, without end."""
    from webhooks.models import Delivery

    endpoint = Endpoint.objects.create(portal_account=account, url=DATA["url"], events=["a"])
    pending = Delivery.objects.create(
        portal_account=account,
        endpoint=endpoint,
        event_id="evt_1",
        event_type="user.disabled",
        payload={},
        status=Delivery.Status.PENDING,
    )
    url = reverse("webhook-redeliver", args=[account.slug, endpoint.pk, pending.pk])

    response = admin_client.post(url, follow=True)

    assert "still being tried" in response.content.decode()
    assert Delivery.objects.count() == 1
