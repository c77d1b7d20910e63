"""Sending deliveries: claim the due ones, POST each signed, record how it went.

At least once: a delivery is claimed by pushing its next attempt a lease ahead, so that a
worker killed while sending leaves it to be claimed again when the lease ends. The receiver
tells repeats apart by webhook-id (the event id, the same on every attempt and redelivery).
A 2xx answer delivers it; anything else (another status, a timeout, a refused address) is a
failed attempt, tried again after WEBHOOKS_RETRY_BASE_SECONDS doubled per attempt (capped at
WEBHOOKS_RETRY_MAX_SECONDS), until WEBHOOKS_MAX_ATTEMPTS marks it failed. Logs name the
delivery, the endpoint's id and the outcome: never the URL (query strings carry tokens) nor a
secret."""

import http.client
import json
import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from webhooks import signing, targets
from webhooks.models import Delivery

log = logging.getLogger(__name__)
ERROR_LENGTH = Delivery._meta.get_field("last_error").max_length


def claim_due(limit):
    """Up to `limit` due deliveries, each leased to this worker for WEBHOOKS_CLAIM_SECONDS."""
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "id")
            .values_list("id", flat=True)[:limit]
        )
        if rows:
            lease = now + timedelta(seconds=settings.WEBHOOKS_CLAIM_SECONDS)
            Delivery.objects.filter(pk__in=rows).update(next_attempt_at=lease)
    return rows


def next_due():
    return (
        Delivery.objects.filter(status=Delivery.Status.PENDING)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )


def backoff(attempts):
    seconds = settings.WEBHOOKS_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.WEBHOOKS_RETRY_MAX_SECONDS))


def body_of(delivery):
    return json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()


def signing_secrets(endpoint, now):
    live = [endpoint.secret]
    if (
        endpoint.previous_secret
        and endpoint.previous_secret_until
        and (endpoint.previous_secret_until > now)
    ):
        live.append(endpoint.previous_secret)
    return live


def send(delivery_id):
    """One attempt at a claimed delivery. Returns its status afterwards."""
    delivery = Delivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None:  # its endpoint was deleted after the claim
        return None
    if delivery.status != Delivery.Status.PENDING:
        return delivery.status
    endpoint = delivery.endpoint
    now = timezone.now()
    code, error = None, ""
    if not endpoint.active:
        return _finish(delivery, now, None, "The endpoint is turned off.", final=True)
    body = body_of(delivery)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "PortalAdmin-Webhooks/1",
        **signing.headers(
            signing_secrets(endpoint, now), delivery.event_id, int(now.timestamp()), body
        ),
    }
    try:
        code = targets.post(endpoint.url, body, headers, timeout=settings.WEBHOOKS_TIMEOUT_SECONDS)
    except targets.RefusedTarget as refused:
        error = str(refused)
    except TimeoutError:
        error = f"No answer within {settings.WEBHOOKS_TIMEOUT_SECONDS} seconds."
    except (OSError, http.client.HTTPException) as failure:
        error = f"Could not connect: {failure.__class__.__name__}: {failure}"
    if code is not None and not 200 <= code < 300:
        error = f"The endpoint answered {code}; a 2xx answer is needed."
    return _finish(delivery, now, code, error)


def _finish(delivery, now, code, error, *, final=False):
    attempts = delivery.attempts + 1
    changes = {
        "attempts": attempts,
        "last_attempt_at": now,
        "response_code": code,
        "last_error": error[:ERROR_LENGTH],
    }
    if not error:
        changes.update(status=Delivery.Status.DELIVERED, delivered_at=now, next_attempt_at=None)
    elif final or attempts >= settings.WEBHOOKS_MAX_ATTEMPTS:
        changes.update(status=Delivery.Status.FAILED, next_attempt_at=None)
    else:
        changes.update(next_attempt_at=now + backoff(attempts))
    # Only a delivery still pending is changed: an attempt that outlived its lease and was
    # taken by another worker in between records nothing over that worker's outcome.
    Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.PENDING).update(**changes)
    log.info(
        "Webhook delivery %s (%s) to endpoint %s: attempt %s, %s",
        delivery.pk,
        delivery.event_type,
        delivery.endpoint_id,
        attempts,
        changes.get("status", "retry later") if not error else f"{code or 'no answer'}",
    )
    return changes.get("status", Delivery.Status.PENDING)
