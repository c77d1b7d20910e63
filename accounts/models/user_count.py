from django.db import models

from helpers.counter_triggers import Counter

# The triggers that keep UserCount (created by migration 0013, re-asserted after every migrate on
# SQLite: accounts.apps).
USER_COUNTER = Counter(
    name="accounts_user_count",
    source="accounts_user",
    table="accounts_usercount",
    count_column="users",
    keys=(
        ("portal_account_id", "{row}.portal_account_id"),
        ("user_type", "{row}.user_type"),
        ("state", "{row}.state"),
    ),
    counted="{row}.kind = 'portal' AND {row}.portal_account_id IS NOT NULL",
    watched=("kind", "portal_account_id", "user_type", "state"),
)


class UserCount(models.Model):
    """How many portal users an account has of one user type in one state.

    The tab counts, seat use, the 80% warning and the license checks read these rows instead of
    counting the account's users, so their cost does not grow with the account. Triggers on the
    users table keep them (migration 0013, accounts.user_count_triggers) in the same statement,
    hence the same transaction, as the change: every path that writes users (lifecycle, import
    batches, the sync, raw SQL) is covered without having to remember to. `manage.py
    recount_users` recomputes them from the users and reports any drift."""

    portal_account = models.ForeignKey(
        "accounts.PortalAccount", on_delete=models.CASCADE, related_name="user_counts"
    )
    user_type = models.CharField(max_length=20)
    state = models.CharField(max_length=20)
    users = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            # What the triggers' INSERT ... ON CONFLICT names.
            models.UniqueConstraint(
                fields=["portal_account", "user_type", "state"], name="user_count_key"
            )
        ]

    def __str__(self):
        return f"{self.portal_account_id} {self.user_type} {self.state}: {self.users}"
