from django.urls import path

from accounts.models import TokenPurpose
from portal import views as portal_views

urlpatterns = [
    path("", portal_views.home, name="portal-home"),
    path("login/", portal_views.login, name="portal-login"),
    path("login/email-link/", portal_views.request_link, name="portal-request-link"),
    path("login/email-code/", portal_views.request_code, name="portal-request-code"),
    path("login/code/", portal_views.code, name="portal-code"),
    path("forgot-password/", portal_views.forgot_password, name="portal-forgot-password"),
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
