from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce

from accounts.models.portal_account import UserType


class UserKind(models.TextChoices):
    MSSP_ADMIN = "mssp_admin", "MSSP admin"
    TECHNICIAN = "technician", "MSSP technician"
    PORTAL = "portal", "Portal user"


class UserState(models.TextChoices):
    UNCONFIRMED = "unconfirmed", "Unconfirmed"
    ENABLED = "enabled", "Enabled"
    DISABLED = "disabled", "Disabled"


# An access end date at most this far ahead: a later one is a typo for "no end".
ACCESS_END_MAX_YEARS = 10


def access_end_problem(ends_on, today):
    """Why `ends_on` cannot be a user's access end date (a message saying what to do), or ""
    when it can (None, no end, always can). Today or earlier would disable at once: that is
    Disable's job, with its confirm step."""
    if ends_on is None:
        return ""
    if ends_on <= today:
        return "Pick a date after today for the access to end, or disable the user to end it now."
    if ends_on.year > today.year + ACCESS_END_MAX_YEARS:
        return f"Pick a date within {ACCESS_END_MAX_YEARS} years, or leave it empty for no end."
    return ""


# States that hold a license seat: a disabled user gives its seat back.
SEAT_STATES = (UserState.UNCONFIRMED, UserState.ENABLED)


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_staff(self, email, password, *, name, kind=UserKind.TECHNICIAN):
        user = self.model(
            email=self.normalize_email(email).lower(),
            name=name,
            kind=kind,
            is_superuser=kind == UserKind.MSSP_ADMIN,
        )
        user.set_password(password)
        user.save()
        return user

    def create_superuser(self, email, password, name="MSSP admin", **extra):
        return self.create_staff(email, password, name=name, kind=UserKind.MSSP_ADMIN)

    def portal_users(self):
        return self.filter(kind=UserKind.PORTAL)

    def console_candidates(self, email):
        """Who may sign in to the console with this email: MSSP staff and portal accounts'
        admins (an email is unique per portal account only; the password decides)."""
        return self.filter(Q(portal_account__isnull=True) | Q(is_account_admin=True), email=email)


class User(AbstractBaseUser, PermissionsMixin):
    """Everybody who can log in: MSSP staff (console) and portal users (portal, and the console
    for a portal account's admin). Portal users are created and changed only through
    accounts.lifecycle so that each change is audited and mailed consistently."""

    email = models.EmailField(blank=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=UserKind.choices, default=UserKind.PORTAL)

    # No index of its own: every tab index leads with it (a lone one cost every insert).
    portal_account = models.ForeignKey(
        "accounts.PortalAccount",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="users",
        db_index=False,
    )
    user_type = models.CharField(max_length=20, choices=UserType.choices, blank=True)
    contact = models.OneToOneField(
        "contacts.Contact", null=True, blank=True, on_delete=models.PROTECT, related_name="user"
    )
    role = models.ForeignKey(
        "accounts.Role", null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )
    # The contact's CRM account name, copied by database triggers (accounts.user_crm_accounts) so
    # the CRM-account filter is an index range of the users table; never written by the app (a
    # written value is replaced by the contact's). NULL without a contact; nullable with no
    # default so that SQLite adds the column in place, as time_zone below.
    crm_account_name = models.CharField(max_length=200, null=True, blank=True, editable=False)  # noqa: DJ001
    state = models.CharField(max_length=20, choices=UserState.choices, blank=True)
    is_account_admin = models.BooleanField(default=False)
    # A new sign-in email from the CRM for a user with console rights waits here until the new
    # address proves itself (contacts.mirror.follow_contact): the CRM must not move a console
    # identity on its own.
    pending_email = models.EmailField(blank=True, default="")
    # The console shows times in this zone (an IANA name such as "Europe/Berlin"; none: UTC).
    # A setting of the person, not of the account: an MSSP's staff work from several countries.
    # Nullable with no default so that SQLite adds the column in place: rebuilding accounts_user
    # would drop the user counters' triggers and fail on its NULLS FIRST indexes.
    time_zone = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    # The address a mail server refused for good (a 5xx for the recipient: no such mailbox),
    # why and when (mail.bounces). It counts only while it is still the user's email, so a new
    # address clears it on every path that changes one (email_undeliverable). Nullable for the
    # same reason as time_zone.
    undeliverable_email = models.EmailField(null=True, blank=True)  # noqa: DJ001
    undeliverable_reason = models.CharField(max_length=300, null=True, blank=True)  # noqa: DJ001
    undeliverable_at = models.DateTimeField(null=True, blank=True)

    # Access ends at the start of this day (UTC): accounts.expiry disables the user then, and
    # clears the date, so enabling them again gives access until a new date is set.
    access_ends_on = models.DateField(null=True, blank=True)
    invited_at = models.DateTimeField(null=True, blank=True)
    # When the inactivity policy last warned the user (accounts.inactivity); a sign-in after it
    # makes it void.
    inactivity_warned_at = models.DateTimeField(null=True, blank=True)
    # Invitation reminders sent by the account's policy (accounts.reminders), and the last one's
    # time; both nullable without a default, as time_zone, so SQLite adds them in place.
    reminders_sent = models.PositiveSmallIntegerField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    last_invited_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    # Indexed only where set (user_disabled_by): a new user has none, and the index is for the
    # SET NULL when the person who disabled them is deleted.
    disabled_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["name"]

    class Meta:
        ordering = ["name", "email"]
        # The users page pages through one state of one account in these orders.
        indexes = [
            models.Index(
                fields=["disabled_by"],
                condition=models.Q(disabled_by__isnull=False),
                name="user_disabled_by",
            ),
            # Covering (contact_id is what the tab filter reads), so deep pages scan the index
            # only: page 1,000 of 100,000 users without touching the table.
            models.Index(
                fields=["portal_account", "state", "name", "id"],
                include=["contact"],
                condition=Q(kind="portal"),
                name="user_tab_by_name",
            ),
            # The CRM-account filter: one CRM account's users of a tab, in name order.
            models.Index(
                fields=["portal_account", "state", "crm_account_name", "name", "id"],
                condition=Q(kind="portal"),
                name="user_tab_by_crm_account",
            ),
            # Dates sort with the users who never had one (never signed in) as the oldest:
            # NULLS FIRST, so both directions of a sort are this index read one way or the other
            # (accounts.user_listing). A tab that alone shows a date has a partial index.
            models.Index(
                F("portal_account"),
                F("state"),
                F("last_login").asc(nulls_first=True),
                F("id"),
                name="user_tab_by_last_login",
            ),
            models.Index(
                F("portal_account"),
                F("state"),
                F("last_invited_at").asc(nulls_first=True),
                F("id"),
                name="user_tab_by_last_sent",
            ),
            models.Index(
                F("portal_account"),
                F("invited_at").asc(nulls_first=True),
                F("id"),
                condition=Q(state="unconfirmed"),
                name="user_unconfirmed_by_invited",
            ),
            models.Index(
                F("portal_account"),
                F("disabled_at").asc(nulls_first=True),
                F("id"),
                condition=Q(state="disabled"),
                name="user_disabled_by_date",
            ),
            # The inactivity policy: an account's enabled users of one type by when they were
            # last active (their last sign-in, else their activation), longest ago first.
            models.Index(
                F("portal_account"),
                F("user_type"),
                Coalesce("last_login", "activated_at", "created_at"),
                F("id"),
                condition=Q(state="enabled"),
                name="user_inactive_by_type",
            ),
            # The expiry sweep: the users whose access has an end, soonest first; the disabled
            # (and users without a date) are not in it.
            models.Index(
                fields=["access_ends_on", "id"],
                condition=Q(access_ends_on__isnull=False, state__in=["unconfirmed", "enabled"]),
                name="user_access_ends",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["portal_account", "email"],
                condition=~Q(email=""),
                name="user_email_unique_per_account",
            ),
            models.UniqueConstraint(
                fields=["email"],
                condition=Q(portal_account__isnull=True),
                name="staff_email_unique",
            ),
            models.UniqueConstraint(
                fields=["portal_account"],
                condition=Q(is_account_admin=True),
                name="one_account_admin_per_account",
            ),
            models.CheckConstraint(
                name="portal_user_fields_match_kind",
                condition=(
                    Q(
                        kind="portal",
                        portal_account__isnull=False,
                        user_type__in=list(UserType.values),
                        state__in=list(UserState.values),
                    )
                    | Q(
                        ~Q(kind="portal"),
                        portal_account__isnull=True,
                        contact__isnull=True,
                        role__isnull=True,
                        user_type="",
                        state="",
                        is_account_admin=False,
                    )
                ),
            ),
            models.CheckConstraint(
                name="contact_only_for_partner_and_customer",
                condition=Q(user_type__in=["partner", "customer"], contact__isnull=False)
                | (~Q(user_type__in=["partner", "customer"]) & Q(contact__isnull=True)),
            ),
        ]

    def __str__(self):
        return f"{self.name} <{self.email}>" if self.email else self.name

    @property
    def is_staff(self):
        """MSSP staff reach the Django admin (read-mostly, for support)."""
        return self.kind in (UserKind.MSSP_ADMIN, UserKind.TECHNICIAN)

    @property
    def is_mssp(self):
        return self.is_staff

    @property
    def is_active(self):
        # The one rule every auth backend and every session check relies on: a portal user signs
        # in only while enabled and, for partners and customers, while the CRM contact exists.
        if self.kind != UserKind.PORTAL:
            return True
        return self.state == UserState.ENABLED and not self.contact_deleted

    @property
    def holds_seat(self):
        return self.state in SEAT_STATES

    @property
    def email_undeliverable(self):
        return bool(self.undeliverable_email) and (
            self.undeliverable_email.lower() == self.email.lower()
        )

    @property
    def contact_deleted(self):
        return self.contact is not None and self.contact.deleted_at is not None

    def can_use_console(self):
        return self.is_staff or (self.is_account_admin and self.is_active)
