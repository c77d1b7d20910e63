from django.core.management.base import BaseCommand, CommandError

from accounts import user_counts, user_crm_accounts
from accounts.models import PortalAccount
from contacts import contact_counts

COUNTERS = {
    "users": user_counts.recount,
    "users per role": user_counts.recount_roles,
    "contacts": contact_counts.recount,
    "contacts per CRM account": contact_counts.recount_crm_accounts,
    "users per CRM account (their copies)": user_crm_accounts.recount,
}


class Command(BaseCommand):
    help = (
        "Count every portal account's users and contacts and compare with the counters that the "
        "tab counts, seat use, license checks and the contacts page read (kept by database "
        "triggers). Prints each drift; --fix rewrites the counters that differ. Exits with 1 "
        "when a drift was found and not fixed, so a scheduled run can alert."
    )

    def add_arguments(self, parser):
        parser.add_argument("--account", metavar="SLUG", help="only this portal account")
        parser.add_argument("--fix", action="store_true", help="rewrite the counters that differ")

    def handle(self, *args, account=None, fix=False, **options):
        accounts = PortalAccount.objects.order_by("slug")
        if account:
            accounts = accounts.filter(slug=account)
            if not accounts.exists():
                raise CommandError(f"No portal account with the slug {account!r}.")
        drifted = 0
        for portal_account in accounts.iterator():
            for what, recount in COUNTERS.items():
                for drift in recount(portal_account, fix=fix):
                    drifted += 1
                    key = " ".join(f"{name}={value}" for name, value in drift.key.items())
                    self.stdout.write(
                        f"{portal_account.slug}: {what} {key}: {drift.kept} kept, "
                        f"{drift.counted} counted{' (fixed)' if fix else ''}"
                    )
        if not drifted:
            self.stdout.write("The counters match the users and contacts.")
        elif not fix:
            raise CommandError(f"{drifted} counter(s) drifted; run again with --fix.")
