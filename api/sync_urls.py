"""Contact sync for CRM connectors: /api/v1/accounts/<slug>/contacts/..."""

from django.urls import path

from api import sync_views

contacts = "accounts/<slug:slug>/contacts/"

urlpatterns = [
    path(contacts + "upsert/", sync_views.upsert_contacts, name="api-sync-upsert"),
    path(contacts + "delete/", sync_views.delete_contacts, name="api-sync-delete"),
    path(contacts + "restore/", sync_views.restore_contacts, name="api-sync-restore"),
    path(contacts + "merge/", sync_views.merge_contacts, name="api-sync-merge"),
]
