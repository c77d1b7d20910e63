from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self):
        from accounts import (
            checks,  # noqa: F401 - registers the deployment checks
            sign_in_audit,  # noqa: F401 - connects the sign-in receivers
        )
