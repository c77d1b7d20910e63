from django.contrib import admin

from accounts.admin import MsspAdminsOnlyAdmin
from api.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(MsspAdminsOnlyAdmin):
    # token_hash is left out: it is no secret, but nobody needs to read it.
    list_display = [
        "name",
        "hint",
        "portal_account",
        "scope",
        "created_at",
        "expires_at",
        "last_used_at",
        "last_used_ip",
        "revoked_at",
    ]
    list_filter = ["portal_account", "scope"]
    search_fields = ["name", "hint"]
    exclude = ["token_hash"]
