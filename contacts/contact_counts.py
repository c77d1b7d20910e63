"""Checking the live/deleted contact counters (contacts.models.ContactCount) that the contacts
page reads: `manage.py recount` calls `recount` for every account."""

from django.db import transaction
from django.db.models import BooleanField, Count, ExpressionWrapper, Q

from contacts.models import Contact, ContactCount
from helpers import counter_drift


def recount(account, fix=False):
    with transaction.atomic():
        counted = (
            Contact.objects.filter(portal_account=account)
            .annotate(
                deleted=ExpressionWrapper(Q(deleted_at__isnull=False), output_field=BooleanField())
            )
            .values("deleted")
            .annotate(n=Count("pk"))
            .order_by()
        )
        return counter_drift.drifts(
            ContactCount, {"portal_account": account}, ("deleted",), "contacts", counted, fix
        )
