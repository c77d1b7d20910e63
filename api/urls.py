"""The CRM-facing JSON API: the contact sync endpoint and the portal-user API, both under
/api/v1/ and authenticated with a portal account's API token (api/authentication.py)."""

from django.urls import include, path

urlpatterns = [
    path("v1/", include("api.sync_urls")),
    path("v1/", include("api.portal_user_urls")),
]
