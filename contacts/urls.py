"""Contacts of a portal account in the console, and its orphaned users."""

from django.urls import path

from contacts.views import (
    bulk_enable,
    contact_deletion,
    contact_pages,
    contact_picker,
    crm_account_picker,
    orphan_fixes,
    orphaned_users,
    portal_user_card,
)

account = "accounts/<slug:slug>/"
contact = account + "contacts/<int:contact_pk>/"
orphan = account + "orphaned-users/<int:user_id>/"

urlpatterns = [
    path(account + "contacts/", contact_pages.contact_list, name="contacts"),
    path(account + "contacts/enable/", bulk_enable.enable_contacts, name="contacts-enable"),
    path(account + "contacts/picker/", contact_picker.contact_picker, name="contact-picker"),
    path(
        account + "crm-accounts/picker/",
        crm_account_picker.crm_account_picker,
        name="crm-account-picker",
    ),
    path(contact, contact_pages.contact_page, name="contact"),
    path(contact + "delete/", contact_deletion.delete_contact, name="contact-delete"),
    path(contact + "restore/", contact_deletion.restore_contact, name="contact-restore"),
    path(
        contact + "portal-user/<str:action>/",
        portal_user_card.portal_user_action,
        name="contact-portal-user",
    ),
    path(account + "orphaned-users/", orphaned_users.orphaned_user_list, name="orphaned-users"),
    path(account + "orphaned-users/fix/<str:fix>/", orphan_fixes.orphan_fix, name="orphan-fix"),
    path(
        orphan + "restore-contact/",
        orphaned_users.restore_orphan_contact,
        name="orphan-restore-contact",
    ),
    path(orphan + "associate/", orphaned_users.associate, name="orphan-associate"),
]
