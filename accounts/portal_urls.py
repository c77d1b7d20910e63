from django.urls import path

from accounts import portal_views
from accounts.models import TokenPurpose

urlpatterns = [
    path("", portal_views.home, name="portal-home"),
    path("login/", portal_views.login, name="portal-login"),
    path("logout/", portal_views.logout, name="portal-logout"),
    path("activate/<str:token>/", portal_views.activate, name="portal-activate"),
    path("reset/<str:token>/", portal_views.reset, name="portal-reset"),
    path("link/<str:token>/", portal_views.link, name="portal-link"),
    path(
        "magic/<str:token>/",
        portal_views.link,
        {"purpose": TokenPurpose.MAGIC_LINK},
        name="portal-magic-link",
    ),
]
