from django.db import models


class AuditEvent(models.Model):
    """Who did what to whom, when, from where, and what changed. Kept when the user is deleted,
    so the subject is also stored as text."""

    class Outcome(models.TextChoices):
        SUCCESS = "success", "Success"
        REFUSED = "refused", "Refused"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # History keeps the ids it was written with. No database constraint ties an event to the
    # live rows: deleting a user neither rewrites their events (SET_NULL did, an UPDATE per
    # event) nor pays for them, and an import does not check three keys per event at commit
    # (about a tenth of its database time, bench/README.md). A relation may name a row that is
    # gone: read it with select_related (a LEFT JOIN gives None), or by its id and label.
    actor = models.ForeignKey(
        "accounts.User",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # nothing looks events up by who did them but the label search
        related_name="+",
    )
    actor_label = models.CharField(max_length=300, blank=True)
    portal_account = models.ForeignKey(
        "accounts.PortalAccount",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="audit_events",
        db_index=False,  # both account indexes lead with it
    )
    action = models.CharField(max_length=40)
    subject_user = models.ForeignKey(
        "accounts.User",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    subject_label = models.CharField(max_length=300, blank=True)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.SUCCESS)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["portal_account", "-created_at"]),
            # The dashboard counts one account's refused sign-ins of the last week: a range of
            # this index, however long the account's history and however busy the others.
            models.Index(
                fields=["portal_account", "action", "created_at"], name="audit_by_account_action"
            ),
            # The whole log filtered by one action (MSSP admins), newest first. It replaces the
            # action's own index and its LIKE twin, which every event written paid for.
            models.Index(fields=["action", "-created_at"], name="audit_by_action"),
        ]

    def __str__(self):
        return f"{self.actor_label} {self.action} {self.subject_label}"
