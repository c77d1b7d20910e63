"""The portal-user API for CRM cards and workflows:
/api/v1/accounts/<slug>/contacts/<ref>/portal-user/..., and the schema of all of /api/v1/."""

from django.urls import path

from api import openapi
from api import portal_user_views as views

portal_user = "accounts/<slug:slug>/contacts/<str:contact_ref>/portal-user/"

urlpatterns = [
    path("openapi.json", openapi.schema_view, name="api-openapi"),
    path(portal_user, views.portal_user_status_view, name="api-portal-user"),
    path(portal_user + "enable/", views.enable, name="api-portal-user-enable"),
    path(portal_user + "disable/", views.disable, name="api-portal-user-disable"),
    path(portal_user + "reactivate/", views.reactivate, name="api-portal-user-reactivate"),
    path(portal_user + "reinvite/", views.reinvite, name="api-portal-user-reinvite"),
    path(portal_user + "delete/", views.delete, name="api-portal-user-delete"),
    path(
        portal_user + "reset-password/",
        views.reset_password,
        name="api-portal-user-reset-password",
    ),
    path(portal_user + "change-role/", views.change_role, name="api-portal-user-change-role"),
    path(portal_user + "access-end/", views.access_end, name="api-portal-user-access-end"),
    path(portal_user + "magic-link/", views.magic_link, name="api-portal-user-magic-link"),
    path(
        portal_user + "send-login-email/",
        views.send_login_email,
        name="api-portal-user-send-login-email",
    ),
]
