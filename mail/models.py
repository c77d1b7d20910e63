from django.db import models


class SenderIdentity(models.Model):
    """Who a portal account's emails come from: its own name and address (HighLevel sends a
    customer's invitations from the customer's domain) and where replies go. Without one, or
    with a field left empty, DEFAULT_FROM_EMAIL speaks for the MSSP. MSSP admins set it: an
    address on any domain is a spoofing tool in the wrong hands (mail.views)."""

    portal_account = models.OneToOneField(
        "accounts.PortalAccount",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="sender_identity",
    )
    from_name = models.CharField("Sender name", max_length=100, blank=True)
    from_email = models.EmailField("Sender address", blank=True)
    reply_to = models.EmailField("Replies go to", blank=True)
    # The portal's own colour for buttons and links, in its emails and on its portal pages
    # (portal.views.brand_css); mail.brand checks that white text stays readable on it.
    accent_color = models.CharField("Brand colour", max_length=7, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"Sender of {self.portal_account}"


class CustomEmail(models.Model):
    """A portal account's own subject and body for one kind of email, with named placeholders
    only (mail.custom_emails checks them): tenants never write template code."""

    portal_account = models.ForeignKey(
        "accounts.PortalAccount", on_delete=models.CASCADE, related_name="custom_emails"
    )
    kind = models.CharField(max_length=30)
    subject = models.CharField(max_length=200)
    body = models.TextField(max_length=5000)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["portal_account", "kind"], name="one_custom_email_per_kind"
            )
        ]

    def __str__(self):
        return f"{self.kind} of {self.portal_account}"


class BrandLogo(models.Model):
    """A portal account's logo, as a small PNG that mail.logos made from the upload. Kept in
    the database, not on a disk, so every web process of a deploy serves the same file."""

    portal_account = models.OneToOneField(
        "accounts.PortalAccount", on_delete=models.CASCADE, primary_key=True, related_name="logo"
    )
    png = models.BinaryField()
    # Part of the logo's URL: a new logo has a new URL, so the old one may be cached for ever.
    digest = models.CharField(max_length=16)
    width = models.PositiveSmallIntegerField()
    height = models.PositiveSmallIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"Logo of {self.portal_account}"
