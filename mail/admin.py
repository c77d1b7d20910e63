from django.contrib import admin

from accounts.admin import ReadOnlyAdmin
from mail.models import BrandLogo, CustomEmail, SenderIdentity


@admin.register(SenderIdentity)
class SenderIdentityAdmin(ReadOnlyAdmin):
    list_display = ["portal_account", "from_name", "from_email", "reply_to", "updated_at"]
    list_select_related = ["portal_account"]


@admin.register(CustomEmail)
class CustomEmailAdmin(ReadOnlyAdmin):
    list_display = ["portal_account", "kind", "subject", "updated_at"]
    list_filter = ["kind"]
    list_select_related = ["portal_account"]


@admin.register(BrandLogo)
class BrandLogoAdmin(ReadOnlyAdmin):
    list_display = ["portal_account", "width", "height", "digest", "updated_at"]
    list_select_related = ["portal_account"]
    exclude = ["png"]
