import hashlib
import secrets

from django.db import models
from django.utils import timezone

# Shown in front of every secret so that a leaked one is recognisable (secret scanners, logs).
SECRET_PREFIX = "pat_"


def token_hash(secret):
    # A plain SHA-256 is enough: the secret is 256 random bits, so there is nothing to brute-force,
    # and unlike a keyed hash it survives a SECRET_KEY rotation.
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def live(self):
        return self.filter(revoked_at__isnull=True)


class ApiToken(models.Model):
    """A portal account's key to the CRM API (sync endpoint and portal-user API). The secret is
    shown once when it is created; only its hash and its first characters are kept. Its scope
    says which endpoints it may call; past `expires_at` it is refused as if revoked."""

    class Scope(models.TextChoices):
        SYNC = "sync", "Contact sync"
        READ = "read", "Read portal users"
        FULL = "full", "Full access"

    portal_account = models.ForeignKey(
        "accounts.PortalAccount", on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=12)  # "pat_Ab3d…": enough to tell tokens apart
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # No default: whoever creates a token says what it may do (tokens from before scopes
    # existed could do everything, and were migrated to "full").
    scope = models.CharField(max_length=8, choices=Scope.choices)
    expires_at = models.DateTimeField(null=True, blank=True)  # None: never
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Names tell a connector's token apart in the list and the audit log.
            models.UniqueConstraint(
                fields=["portal_account", "name"],
                condition=models.Q(revoked_at__isnull=True),
                name="live_api_token_name_unique_per_account",
            )
        ]

    def __str__(self):
        return f"API token '{self.name}'"

    @property
    def is_revoked(self):
        return self.revoked_at is not None

    @property
    def is_expired(self):
        return self.expires_at is not None and self.expires_at <= timezone.now()

    def allows(self, scope):
        """Whether this token may call an endpoint that needs `scope`: "full" may call all."""
        return self.scope in (scope, self.Scope.FULL)

    @classmethod
    def find(cls, secret):
        """The unrevoked token whose secret this is (expired or not: the caller tells an expired
        token apart, to say so), or None."""
        if not secret or not secret.startswith(SECRET_PREFIX):
            return None
        return (
            cls.objects.live()
            .select_related("portal_account")
            .filter(token_hash=token_hash(secret))
            .first()
        )

    @classmethod
    def new_secret(cls):
        return SECRET_PREFIX + secrets.token_urlsafe(32)

    def mark_used(self, ip):
        # Once a minute is precise enough for "last used" and spares a write per request; a
        # new address is written at once, as a token used from somewhere new is worth seeing.
        now = timezone.now()
        if (
            self.last_used_at is None
            or (now - self.last_used_at).total_seconds() > 60
            or ip != self.last_used_ip
        ):
            ApiToken.objects.filter(pk=self.pk).update(last_used_at=now, last_used_ip=ip)
            self.last_used_at, self.last_used_ip = now, ip
