from django.db import models


class TokenPurpose(models.TextChoices):
    ACTIVATION = "activation", "Invitation"
    PASSWORD_RESET = "password_reset", "Password reset"
    MAGIC_LINK = "magic_link", "Magic link"
    LOGIN_EMAIL = "login_email", "Login email"
    LOGIN_CODE = "login_code", "One-time code"
    EMAIL_CHANGE = "email_change", "Email change"


class LoginToken(models.Model):
    """A single-use, expiring credential. Only a keyed hash of the secret is stored; see
    accounts.tokens for issuing and redeeming."""

    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="login_tokens")
    purpose = models.CharField(max_length=20, choices=TokenPurpose.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    # A deep-link target inside the portal (e.g. "courses"), for magic links and login emails.
    target = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    # The email that carries this token's secret, if an email does: its secret is derived from
    # that email, so that sending the same email again carries the same link
    # (accounts.tokens.issue_for_email).
    outbox_email = models.ForeignKey(
        "accounts.OutboxEmail", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "purpose"]),
            # Retention deletes tokens long expired (operations.retention.login_tokens).
            models.Index(fields=["expires_at"], name="token_by_expiry"),
        ]

    def __str__(self):
        return f"{self.get_purpose_display()} for {self.user_id}"

    @property
    def is_live(self):
        from django.utils import timezone

        return self.used_at is None and self.revoked_at is None and self.expires_at > timezone.now()
