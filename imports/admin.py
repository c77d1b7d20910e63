from django.contrib import admin

from accounts.admin import ReadOnlyAdmin
from imports.models import ImportJob


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "portal_account",
        "target",
        "original_filename",
        "status",
        "total_rows",
        "created",
        "failed",
        "started_by",
    ]
    list_filter = ["status", "target", "portal_account"]
    search_fields = ["original_filename", "portal_account__name"]
    list_select_related = ["portal_account", "started_by"]
