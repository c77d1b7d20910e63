from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def private_targets_closed(app_configs, **kwargs):
    if settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS:
        return [
            Warning(
                "WEBHOOKS_ALLOW_PRIVATE_TARGETS is on: webhooks may be sent to this machine and "
                "its private networks.",
                hint="Leave it off in production; it exists for tests and development.",
                id="webhooks.W001",
            )
        ]
    return []
