from django.db import models
from django.db.models import Q
from django.db.models.functions import Now


class EmailKind(models.TextChoices):
    INVITATION = "invitation", "Invitation"
    REINVITATION = "reinvitation", "Reinvitation"
    PASSWORD_RESET = "password_reset", "Password reset"
    ACCESS_RESTORED = "access_restored", "Access restored"
    LOGIN_LINK = "login_link", "Login link"
    LOGIN_CODE = "login_code", "One-time code"
    EMAIL_CHANGE_CONFIRM = "email_change_confirm", "Confirm a new sign-in email"
    EMAIL_CHANGE_NOTICE = "email_change_notice", "Sign-in email change notice"
    # To a blocked person (disabled, or their CRM contact deleted) who asked for a sign-in link
    # or code: the page answers the same for everyone, so the email says why nothing else came.
    ACCESS_BLOCKED = "access_blocked", "Account disabled notice"
    # Sent by the account's policies (accounts.reminders, accounts.inactivity), never by a person.
    INVITATION_REMINDER = "invitation_reminder", "Invitation reminder"
    INACTIVITY_WARNING = "inactivity_warning", "Inactivity warning"


# The urgent lane: emails a person is waiting for (a sign-in link or code, a password reset, an
# invitation asked for again, a new address to confirm). The rest (invitations above all, from a
# bulk invite or an import) is the bulk lane, which never delays these (mail/batches.py). The
# portal sends a reinvitation to an invited person who asks for a sign-in link; the console, to
# one person at a time (a bulk reinvite is at most BULK_ACTION_MAX_USERS, paced per account).
# Changing this set changes the lanes' partial indexes: it needs a migration.
URGENT_KINDS = (
    EmailKind.LOGIN_LINK,
    EmailKind.LOGIN_CODE,
    EmailKind.PASSWORD_RESET,
    EmailKind.REINVITATION,
    EmailKind.EMAIL_CHANGE_CONFIRM,
    EmailKind.ACCESS_BLOCKED,  # instead of the link or code the person is waiting for
)
URGENT, BULK = "urgent", "bulk"
_URGENT = Q(kind__in=[str(kind) for kind in URGENT_KINDS])
LANES = {URGENT: _URGENT, BULK: ~_URGENT}


def lane_of(kind):
    return URGENT if kind in URGENT_KINDS else BULK


class OutboxEmail(models.Model):
    """An email owed to somebody, written in the same transaction as the change that caused it.

    The row holds no secret: the sender mints the login token when it renders the message, so
    the only copy of a link is in the email itself."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    # The account whose pace and brand the email follows: for a user's email, a copy of the
    # user's, whose own key holds it. No database constraint nor index of its own: a constraint
    # is a query per row at each commit (an import writes thousands of rows a batch), and an
    # index is written again when the row is marked sent; nothing looks rows up by account but
    # the cascade, which Django still does, and accounts are never deleted while they have users
    # (the users' key protects them). The sender reads it with a LEFT JOIN.
    portal_account = models.ForeignKey(
        "accounts.PortalAccount",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        db_constraint=False,
        db_index=False,
        related_name="+",
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
    # No index of its own (nor the LIKE index Django adds to a text column's): every query by
    # status reads a range of (status, created_at) or of a lane's partial index, and each index
    # is written again when a row is marked sent (a status change is never a HOT update).
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    # When a sender may take the row next: written with the row (the database's clock, also for
    # rows inserted in bulk), then the end of a sender's claim, a retry's backoff or the pace's
    # turn. Pending rows are claimed in this order (mail/batches.py).
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_default=Now())
    # The turn the account's pace reserved for the row (mail/send_pace.py): claimed at that
    # time, it leaves without counting again.
    paced_turn_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    subject = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # What each index is for; a row's mark as sent writes every index without a condition
        # (mail/batches.py), the claim the same and its lane's, an import's row all it is in.
        indexes = [
            # Retention deletes old sent, cancelled and failed rows, never reading pending ones
            # (operations.retention.outbox_emails); the health figures count pending and failed
            # rows and find the oldest pending one (operations.figures).
            models.Index(fields=["status", "created_at"], name="outbox_by_status_created"),
            # The batch sender's claim: the due rows of a lane, oldest first, read as a range
            # however many rows wait for a later turn; the sweep of rows left unsent
            # (mail.tasks.requeue_unsent), a lane at a time.
            models.Index(
                fields=["next_attempt_at", "id"],
                condition=Q(status="pending") & LANES[URGENT],
                name="outbox_urgent_due",
            ),
            models.Index(
                fields=["next_attempt_at", "id"],
                condition=Q(status="pending") & LANES[BULK],
                name="outbox_bulk_due",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} to {self.to_email} ({self.status})"
