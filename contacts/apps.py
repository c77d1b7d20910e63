from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _restore_counter_triggers(using, **kwargs):
    from django.db import connections

    from contacts.models import CONTACT_COUNTER, CRM_ACCOUNT_COUNTER

    for counter in (CONTACT_COUNTER, CRM_ACCOUNT_COUNTER):
        counter.restore_sqlite_triggers(connections[using])


class ContactsConfig(AppConfig):
    name = "contacts"

    def ready(self):
        post_migrate.connect(_restore_counter_triggers, sender=self)
