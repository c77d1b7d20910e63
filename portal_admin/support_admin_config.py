from django.contrib.admin.apps import AdminConfig


class SupportAdminConfig(AdminConfig):
    """django.contrib.admin with our site (portal_admin/support_admin.py), which is imported
    only once the apps are loaded."""

    default_site = "portal_admin.support_admin.SupportAdminSite"
