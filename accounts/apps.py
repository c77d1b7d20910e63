from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _restore_counter_triggers(using, **kwargs):
    from django.db import connections

    from accounts import user_crm_accounts
    from accounts.models.user_count import ROLE_COUNTER, USER_COUNTER

    for counter in (USER_COUNTER, ROLE_COUNTER):
        counter.restore_sqlite_triggers(connections[using])
    user_crm_accounts.restore_sqlite_triggers(connections[using])


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self):
        from accounts import (
            checks,  # noqa: F401 - registers the deployment checks
            sign_in_audit,  # noqa: F401 - connects the sign-in receivers
        )

        post_migrate.connect(_restore_counter_triggers, sender=self)
