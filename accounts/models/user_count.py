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


# The triggers that keep RoleCount (created by migration 0026, re-asserted after every migrate on
# SQLite: accounts.apps).
ROLE_COUNTER = Counter(
    name="accounts_role_count",
    source="accounts_user",
    table="accounts_rolecount",
    count_column="users",
    keys=(
        ("portal_account_id", "{row}.portal_account_id"),
        ("role_id", "{row}.role_id"),
    ),
    counted="{row}.role_id IS NOT NULL AND {row}.portal_account_id IS NOT NULL",
    watched=("portal_account_id", "role_id"),
)


class RoleCount(models.Model):
    """How many users have a role (in any state), kept by triggers like UserCount: the Roles
    page and a role's edit page read it instead of counting the account's users per role, which
    took over a second at 100,000 users."""

    portal_account = models.ForeignKey(
        "accounts.PortalAccount", on_delete=models.CASCADE, related_name="+"
    )
    role = models.ForeignKey("accounts.Role", on_delete=models.CASCADE, related_name="counts")
    users = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["portal_account", "role"], name="role_count_key")
        ]

    def __str__(self):
        return f"role {self.role_id}: {self.users}"
