"""A portal account's webhook endpoints and the deliveries of events to them.

The endpoint's secret is kept in clear: the worker signs every delivery with it, so it must be
readable (a hash would not do). It is shown to people once, when it is made; the console shows
only its first characters afterwards, and logs never carry it."""

import base64
import secrets
from urllib.parse import urlsplit

from django.db import models

SECRET_PREFIX = "whsec_"  # the Standard Webhooks form: the prefix, then base64 of the key


def new_secret():
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


class EventType(models.TextChoices):
    USER_INVITED = "user.invited", "A user was invited"
    USER_ACTIVATED = "user.activated", "A user accepted their invitation"
    USER_DISABLED = "user.disabled", "A user was disabled"
    USER_ENABLED = "user.enabled", "A user was enabled again"
    USER_DELETED = "user.deleted", "A user was deleted"
    USER_ROLE_CHANGED = "user.role_changed", "A user's role changed"
    USER_SIGNED_IN = "user.signed_in", "A user signed in"
    USER_EMAIL_BOUNCED = "user.email_bounced", "A user's email address bounced"
    IMPORT_FINISHED = "import.finished", "An import finished"


class Endpoint(models.Model):
    portal_account = models.ForeignKey(
        "accounts.PortalAccount", on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.CharField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    secret = models.CharField(max_length=64, default=new_secret)
    # After a rotation the old secret signs too, for a day, so that the receiver can switch
    # without losing deliveries (the signature header carries both).
    previous_secret = models.CharField(max_length=64, blank=True)
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    events = models.JSONField(default=list)  # EventType values
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["portal_account", "active"])]

    def __str__(self):
        return self.url

    @property
    def host(self):
        return urlsplit(self.url).hostname or ""

    @property
    def secret_hint(self):
        return self.secret[: len(SECRET_PREFIX) + 4]

    def event_labels(self):
        return [EventType(value).label for value in EventType.values if value in self.events]


class Delivery(models.Model):
    """One event for one endpoint: its payload as it was when the change happened (the user may
    be gone by the time it is sent), and how sending it went. A redelivery is a new row with the
    same event id, so the log keeps every try."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    portal_account = models.ForeignKey(
        "accounts.PortalAccount", on_delete=models.CASCADE, related_name="+"
    )
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.CharField(max_length=40)  # "evt_...": the Webhook-Id, the same on retries
    event_type = models.CharField(max_length=40, choices=EventType.choices)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Pending: when a worker may send it next (also the lease of a worker that took it).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    redelivery_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["endpoint", "-id"], name="webhook_delivery_log"),
            models.Index(fields=["created_at"], name="webhook_delivery_age"),
            models.Index(
                fields=["next_attempt_at", "id"],
                condition=models.Q(status="pending"),
                name="webhook_delivery_due",
            ),
        ]

    def __str__(self):
        return f"{self.event_type} {self.event_id}"
