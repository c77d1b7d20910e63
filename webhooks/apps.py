from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self):
        from accounts import audit
        from webhooks import checks, events  # noqa: F401 - checks registers the deployment check

        # Deliveries are written by the audit event's transaction (accounts.audit.recorded).
        audit.recorded.connect(events.on_audit_recorded, dispatch_uid="webhooks.on_audit")
