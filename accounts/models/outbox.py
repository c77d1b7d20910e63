from django.db import models


class EmailKind(models.TextChoices):
    INVITATION = "invitation", "Invitation"
    REINVITATION = "reinvitation", "Reinvitation"
    PASSWORD_RESET = "password_reset", "Password reset"
    ACCESS_RESTORED = "access_restored", "Access restored"
    LOGIN_LINK = "login_link", "Login link"
    LOGIN_CODE = "login_code", "One-time code"
    EMAIL_CHANGE_CONFIRM = "email_change_confirm", "Confirm a new sign-in email"
    EMAIL_CHANGE_NOTICE = "email_change_notice", "Sign-in email change notice"


class OutboxEmail(models.Model):
    """An email owed to somebody, written in the same transaction as the change that caused it.

    The row holds no secret: the sender mints the login token when it renders the message, so
    the only copy of a link is in the email itself."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    portal_account = models.ForeignKey(
        "accounts.PortalAccount", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    user = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="emails"
    )
    to_email = models.EmailField()
    kind = models.CharField(max_length=30, choices=EmailKind.choices)
    # Non-secret extras for the template, e.g. a deep-link target or who sent an invitation.
    context = models.JSONField(default=dict, blank=True)
    # Who caused the email (the admin who reset a password, or the person who asked for their
    # own link): the worker mints the token later, and credits it to this person.
    queued_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    subject = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "queued_at"]),
            # Retention deletes old sent, cancelled and failed rows, never reading pending ones
            # (operations.retention.outbox_emails).
            models.Index(fields=["status", "created_at"], name="outbox_by_status_created"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} to {self.to_email} ({self.status})"
