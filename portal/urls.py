from django.urls import path

from accounts.models import TokenPurpose
from portal import brand, views

urlpatterns = [
    path("", views.home, name="portal-home"),
    path("brand.css", brand.brand_css, name="portal-brand-css"),
    path("logo/<str:digest>.png", brand.logo, name="portal-logo"),
    path("login/", views.login, name="portal-login"),
    path("login/email-link/", views.request_link, name="portal-request-link"),
    path("login/email-code/", views.request_code, name="portal-request-code"),
    path("login/code/", views.code, name="portal-code"),
    path("forgot-password/", views.forgot_password, name="portal-forgot-password"),
    path("logout/", views.logout, name="portal-logout"),
    path("activate/<str:token>/", views.activate, name="portal-activate"),
    path("reset/<str:token>/", views.reset, name="portal-reset"),
    path("link/<str:token>/", views.link, name="portal-link"),
    path("confirm-email/<str:token>/", views.confirm_email, name="portal-confirm-email"),
    path(
        "magic/<str:token>/",
        views.link,
        {"purpose": TokenPurpose.MAGIC_LINK},
        name="portal-magic-link",
    ),
]
