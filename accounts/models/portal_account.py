from django.core.validators import MinValueValidator
from django.db import models
from django.urls import reverse


class UserType(models.TextChoices):
    PARTNER = "partner", "Partner"
    CUSTOMER = "customer", "Customer"
    EMPLOYEE = "employee", "Employee"

    @property
    def needs_contact(self):
        return self in (UserType.PARTNER, UserType.CUSTOMER)


# The user types that stand on a CRM contact: a contact's user has a role of one of these.
CONTACT_USER_TYPES = (UserType.PARTNER.value, UserType.CUSTOMER.value)


class PortalAccount(models.Model):
    """A tenant: one customer portal, reachable at /p/<slug>/."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    partner_licenses = models.PositiveIntegerField(default=0, validators=[MinValueValidator(0)])
    customer_licenses = models.PositiveIntegerField(default=0, validators=[MinValueValidator(0)])
    employee_licenses = models.PositiveIntegerField(default=0, validators=[MinValueValidator(0)])
    # The account's admin must set up a second factor (TOTP) before using the console.
    require_two_factor = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def licenses_for(self, user_type):
        return getattr(self, f"{UserType(user_type).value}_licenses")

    def portal_path(self):
        return reverse("portal-home", kwargs={"slug": self.slug})


class Role(models.Model):
    """A portal role. Names match case-sensitively, as the CRM and CSV files spell them.

    A role belongs to one user type, as a Magentrix community role belongs to one kind of user:
    a user's type is always their role's (accounts.lifecycle sets both together), so the role a
    CSV row, an API call or a console form names decides which licenses the user takes."""

    portal_account = models.ForeignKey(
        PortalAccount, on_delete=models.CASCADE, related_name="roles"
    )
    name = models.CharField(max_length=100)
    user_type = models.CharField(max_length=20, choices=UserType.choices)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["portal_account", "name"], name="role_name_unique_per_account"
            ),
            models.CheckConstraint(
                name="role_has_user_type", condition=models.Q(user_type__in=UserType.values)
            ),
        ]

    def __str__(self):
        return self.name if self.active else f"{self.name} (inactive)"

    @property
    def needs_contact(self):
        """Partner and customer users stand on a CRM contact; employees never do."""
        # Not UserType(...).needs_contact: an import asks twice per row, and the enum's
        # constructor was a tenth of the import's own CPU.
        return self.user_type in CONTACT_USER_TYPES
