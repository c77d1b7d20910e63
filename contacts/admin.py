from django.contrib import admin

from accounts.admin import ReadOnlyAdmin
from contacts.models import Contact


@admin.register(Contact)
class ContactAdmin(ReadOnlyAdmin):
    list_display = [
        "name",
        "contact_id",
        "email",
        "crm_account_name",
        "portal_account",
        "deleted_at",
    ]
    list_filter = ["source", "portal_account"]
    search_fields = ["name", "email", "contact_id", "salesforce_id"]
