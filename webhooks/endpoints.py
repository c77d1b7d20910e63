"""Adding, changing, rotating and deleting a portal account's endpoints, and redelivering:
each one transaction with its audit event. The audit event names the endpoint by its host and
id, never its full URL (query strings carry receivers' tokens) nor its secret."""

from datetime import timedelta
from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone

from accounts import audit
from accounts.errors import LifecycleError
from accounts.models import PortalAccount
from webhooks import events
from webhooks.models import Delivery, Endpoint, new_secret

# After a rotation the old secret keeps signing this long, beside the new one.
ROTATION_OVERLAP = timedelta(hours=24)
MAX_ENDPOINTS = 10  # per portal account: each change is sent to every one of them
SAME_URL = "This account already sends to this URL: edit that endpoint instead."


def too_many(portal_account):
    """The message when the account has MAX_ENDPOINTS already, else ""."""
    count = portal_account.webhook_endpoints.count()
    if count >= MAX_ENDPOINTS:
        return f"This account has {count} endpoints, the most it may have. Delete one first."
    return ""


def taken(portal_account, url, endpoint=None):
    """Whether another endpoint of the account has this URL (one URL, one secret: a second
    endpoint would send every event twice, signed with a secret the receiver does not check)."""
    others = portal_account.webhook_endpoints.filter(url=url)
    if endpoint is not None:
        others = others.exclude(pk=endpoint.pk)
    return others.exists()


def _check_under_lock(portal_account, url, endpoint=None):
    """The form checked these already; under the account's row lock they hold against a second
    admin (or a double click) adding the same endpoint at the same moment."""
    PortalAccount.objects.select_for_update().filter(pk=portal_account.pk).first()
    if endpoint is None and (problem := too_many(portal_account)):
        raise LifecycleError(problem)
    if taken(portal_account, url, endpoint):
        raise LifecycleError(SAME_URL)


def _named(endpoint):
    return f"endpoint {endpoint.pk} ({urlsplit(endpoint.url).hostname})"


def _settings(endpoint):
    return {"events": sorted(endpoint.events), "active": endpoint.active}


@transaction.atomic
def create(portal_account, *, url, events, description="", active=True, by, ip=None):
    """Returns the endpoint; its secret is to be shown once, now. LifecycleError when the
    account has as many as it may, or one with this URL."""
    _check_under_lock(portal_account, url)
    endpoint = Endpoint.objects.create(
        portal_account=portal_account,
        url=url,
        description=description,
        events=list(events),
        active=active,
        created_by=by,
    )
    audit.record(
        "create_webhook_endpoint",
        by=by,
        portal_account=portal_account,
        ip=ip,
        detail=_named(endpoint),
        after=_settings(endpoint),
    )
    return endpoint


@transaction.atomic
def update(endpoint, *, url, events, description, active, by, ip=None):
    _check_under_lock(endpoint.portal_account, url, endpoint)
    endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
    before = _settings(endpoint)
    moved = endpoint.url != url
    endpoint.url, endpoint.events = url, list(events)
    endpoint.description, endpoint.active = description, active
    endpoint.save()
    after = _settings(endpoint)
    if moved:
        before["host"], after["host"] = "(earlier URL)", urlsplit(url).hostname
    audit.record(
        "update_webhook_endpoint",
        by=by,
        portal_account=endpoint.portal_account,
        ip=ip,
        detail=_named(endpoint),
        before=before,
        after=after,
    )
    return endpoint


@transaction.atomic
def rotate_secret(endpoint, *, by, ip=None):
    """A new secret; the old one signs beside it for ROTATION_OVERLAP. Returns the endpoint."""
    endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_until = timezone.now() + ROTATION_OVERLAP
    endpoint.secret = new_secret()
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_until"])
    audit.record(
        "rotate_webhook_secret",
        by=by,
        portal_account=endpoint.portal_account,
        ip=ip,
        detail=_named(endpoint),
    )
    return endpoint


@transaction.atomic
def delete(endpoint, *, by, ip=None):
    """The endpoint and its delivery log go; pending deliveries are never sent."""
    endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
    audit.record(
        "delete_webhook_endpoint",
        by=by,
        portal_account=endpoint.portal_account,
        ip=ip,
        detail=_named(endpoint),
        before=_settings(endpoint),
    )
    endpoint.delete()


@transaction.atomic
def redeliver(delivery, *, by, ip=None):
    """Send the delivery's event again, as a new delivery with the same event id and payload."""
    endpoint = Endpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
    if not endpoint.active:
        raise LifecycleError("Turn the endpoint on before redelivering to it.")
    if Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.PENDING).exists():
        # Each click on a pending one (a redelivery, say) would queue one more copy.
        raise LifecycleError("This delivery is still being tried: redeliver it once it ends.")
    if Delivery.objects.filter(redelivery_of=delivery, status=Delivery.Status.PENDING).exists():
        raise LifecycleError("This event is already waiting to be redelivered.")
    again = Delivery.objects.create(
        portal_account_id=delivery.portal_account_id,
        endpoint=endpoint,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        payload=delivery.payload,
        next_attempt_at=timezone.now(),
        redelivery_of=delivery,
    )
    audit.record(
        "redeliver_webhook",
        by=by,
        portal_account=endpoint.portal_account,
        ip=ip,
        detail=f"{delivery.event_type} {delivery.event_id} to {_named(endpoint)}",
    )
    events.wake_on_commit()
    return again
