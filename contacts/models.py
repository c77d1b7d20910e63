import secrets
import string

from django.db import models
from django.db.models import Q

from helpers.counter_triggers import Counter

_ID_ALPHABET = string.ascii_letters + string.digits
CONTACT_ID_LENGTH = 19


def new_contact_id():
    """Ids for contacts created here (console, import) look like the CRM's: '003' + 16."""
    return "003" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(CONTACT_ID_LENGTH - 3))


class ContactQuerySet(models.QuerySet):
    def live(self):
        return self.filter(deleted_at__isnull=True)

    def deleted(self):
        return self.filter(deleted_at__isnull=False)


class Contact(models.Model):
    """A mirror of one CRM contact. Deleting in the CRM sets deleted_at (its recycle bin);
    the row stays so that a restore brings the portal user back."""

    class Source(models.TextChoices):
        CRM = "crm", "CRM sync"
        CONSOLE = "console", "Console"
        IMPORT = "import", "CSV import"

    portal_account = models.ForeignKey(
        "accounts.PortalAccount", on_delete=models.CASCADE, related_name="contacts"
    )
    contact_id = models.CharField(max_length=CONTACT_ID_LENGTH, default=new_contact_id)
    # NULL, not "", so that the per-account unique constraint ignores contacts without one.
    salesforce_id = models.CharField(max_length=18, null=True, blank=True)  # noqa: DJ001
    name = models.CharField(max_length=200)
    email = models.CharField(max_length=254, blank=True)
    crm_account_name = models.CharField(max_length=200, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.CRM)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Set on the loser of a merge (which is deleted too): where its portal user went, and why a
    # repeated merge from the CRM changes nothing.
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_contacts"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ContactQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        indexes = [
            models.Index(fields=["portal_account", "email"]),
            # The contacts in the CRM's recycle bin, in name order for the contacts page's
            # Deleted list (and found by account for the orphaned users).
            models.Index(
                fields=["portal_account", "name", "id"],
                condition=Q(deleted_at__isnull=False),
                name="contact_deleted_by_name",
            ),
            # The contacts page: live contacts of an account in name order, paged over ids.
            models.Index(
                fields=["portal_account", "name", "id"],
                condition=Q(deleted_at__isnull=True),
                name="contact_live_by_name",
            ),
            # Its other sorts (contacts.contact_listing.SORTS), each an index range forwards or
            # backwards. Not by last update: every CRM sync would rewrite that index.
            models.Index(
                fields=["portal_account", "email", "id"],
                condition=Q(deleted_at__isnull=True),
                name="contact_live_by_email",
            ),
            models.Index(
                fields=["portal_account", "crm_account_name", "id"],
                condition=Q(deleted_at__isnull=True),
                name="contact_live_by_crm_account",
            ),
            models.Index(
                fields=["portal_account", "created_at", "id"],
                condition=Q(deleted_at__isnull=True),
                name="contact_live_by_created",
            ),
            models.Index(
                fields=["portal_account", "deleted_at", "id"],
                condition=Q(deleted_at__isnull=False),
                name="contact_deleted_by_date",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["portal_account", "contact_id"], name="contact_id_unique_per_account"
            ),
            models.UniqueConstraint(
                fields=["portal_account", "salesforce_id"],
                condition=Q(salesforce_id__isnull=False),
                name="salesforce_id_unique_per_account",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.contact_id})"

    @property
    def is_deleted(self):
        return self.deleted_at is not None


# The triggers that keep ContactCount (created by migration 0006, re-asserted after every migrate
# on SQLite: contacts.apps).
CONTACT_COUNTER = Counter(
    name="contacts_contact_count",
    source="contacts_contact",
    table="contacts_contactcount",
    count_column="contacts",
    keys=(
        ("portal_account_id", "{row}.portal_account_id"),
        ("deleted", "({row}.deleted_at IS NOT NULL)"),
    ),
    counted="{row}.portal_account_id IS NOT NULL",
    watched=("portal_account_id", "deleted_at"),
)


class ContactCount(models.Model):
    """How many live or deleted contacts an account has, kept by triggers on the contacts table
    (migration 0006, helpers.counter_triggers) in the same transaction as every change, so the
    contacts page's Live and Deleted counts read one row each whatever the account's size.
    `manage.py recount` checks them."""

    portal_account = models.ForeignKey(
        "accounts.PortalAccount", on_delete=models.CASCADE, related_name="contact_counts"
    )
    deleted = models.BooleanField()
    contacts = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["portal_account", "deleted"], name="contact_count_key")
        ]

    def __str__(self):
        return f"{self.portal_account_id} {'deleted' if self.deleted else 'live'}: {self.contacts}"


# The triggers that keep CrmAccount (created by migration 0008, re-asserted after every migrate on
# SQLite: contacts.apps).
CRM_ACCOUNT_COUNTER = Counter(
    name="contacts_crm_account_count",
    source="contacts_contact",
    table="contacts_crmaccount",
    count_column="contacts",
    keys=(
        ("portal_account_id", "{row}.portal_account_id"),
        ("name", "{row}.crm_account_name"),
    ),
    counted="{row}.portal_account_id IS NOT NULL AND {row}.crm_account_name <> ''",
    watched=("portal_account_id", "crm_account_name"),
)


class CrmAccount(models.Model):
    """A CRM account (the company) that contacts of a portal account belong to, by name, with how
    many contacts (live or deleted) carry that name: kept by triggers on the contacts table like
    ContactCount. The CRM-account filters match the typed text against these few names, not
    against every contact of the account, and offer them as suggestions. A name whose last
    contact moved away stays with 0 contacts and is not offered."""

    portal_account = models.ForeignKey(
        "accounts.PortalAccount", on_delete=models.CASCADE, related_name="crm_accounts"
    )
    name = models.CharField(max_length=200)
    contacts = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            # What the triggers' INSERT ... ON CONFLICT names; also the index of the look-ups.
            models.UniqueConstraint(fields=["portal_account", "name"], name="crm_account_key")
        ]

    def __str__(self):
        return f"{self.portal_account_id} {self.name}: {self.contacts}"
