from django.db import models


class SignedInSession(models.Model):
    """A browser signed in as a user, at the console or at the portal: what people see on their
    sessions page and end from there (and admins end for a portal user). The session itself
    lives in Django's session store under `session_key`."""

    class Door(models.TextChoices):
        CONSOLE = "console", "Console"
        PORTAL = "portal", "Portal"

    user = models.ForeignKey(
        "accounts.User", on_delete=models.CASCADE, related_name="signed_in_sessions"
    )
    session_key = models.CharField(max_length=40, unique=True)
    door = models.CharField(max_length=10, choices=Door.choices)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["-last_seen_at", "-id"]
        indexes = [models.Index(fields=["user", "-last_seen_at"], name="session_by_user")]

    def __str__(self):
        return f"{self.get_door_display()} session of {self.user_id}"
