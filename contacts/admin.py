from django.contrib import admin

from accounts.admin import ReadOnlyAdmin
from contacts.models import Contact, ContactCount, CrmAccount


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


@admin.register(ContactCount)
class ContactCountAdmin(ReadOnlyAdmin):
    """The live/deleted counters the contacts page reads; `manage.py recount` checks them."""

    list_display = ["portal_account", "deleted", "contacts"]
    list_filter = ["deleted", "portal_account"]
    list_select_related = ["portal_account"]


@admin.register(CrmAccount)
class CrmAccountAdmin(ReadOnlyAdmin):
    """The CRM account names and their contacts, which the CRM-account filters match; `manage.py
    recount` checks them."""

    list_display = ["name", "portal_account", "contacts"]
    list_filter = ["portal_account"]
    list_select_related = ["portal_account"]
    search_fields = ["name"]
