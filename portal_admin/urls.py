from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("accounts.urls")),
    path("", include("imports.urls")),
    path("", include("contacts.urls")),
    path("", include("mail.urls")),
    path("", include("api.console_urls")),
    path("", include("operations.urls")),
    path("", include("webhooks.urls")),
    path("api/", include("api.urls")),
    path("p/<slug:slug>/", include("portal.urls")),
    path("support/", admin.site.urls),
]

# The API answers in JSON even for URLs it does not have; everything else gets the usual page.
handler404 = "api.json_io.not_found"
