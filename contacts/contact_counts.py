"""Checking the contact counters that the contacts page and the CRM-account filters read
(contacts.models.ContactCount, CrmAccount): `manage.py recount` calls these for every account."""

from django.db import transaction
from django.db.models import BooleanField, Count, ExpressionWrapper, Q

from contacts.models import Contact, ContactCount, CrmAccount
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


def recount_crm_accounts(account, fix=False):
    """The same check for the contacts per CRM account name (contacts.models.CrmAccount)."""
    with transaction.atomic():
        per_name = (
            Contact.objects.filter(portal_account=account)
            .exclude(crm_account_name="")
            .values_list("crm_account_name")
            .annotate(n=Count("pk"))
            .order_by()
        )
        counted = [{"name": name, "n": n} for name, n in per_name]
        return counter_drift.drifts(
            CrmAccount, {"portal_account": account}, ("name",), "contacts", counted, fix
        )
