from django.contrib.admin.apps import AdminConfig


class SupportAdminConfig(AdminConfig):
    """django.contrib.admin with our site (portal_admin/support_admin.py), which is imported
    only once the apps are loaded."""

    default_site = "portal_admin.support_admin.SupportAdminSite"

    def ready(self):
        super().ready()  # every app's admin module registered by now
        from portal_admin.support_admin import drop_what_support_must_not_touch

        drop_what_support_must_not_touch()
