from django.core.management.base import BaseCommand

from operations import retention


class Command(BaseCommand):
    help = (
        "Delete what is kept no longer (LOGIN_TOKEN_RETENTION_DAYS, OUTBOX_RETENTION_DAYS, "
        "AUDIT_RETENTION_DAYS, expired sessions), as beat's daily operations.tasks."
        "apply_retention does. --dry-run prints the counts and deletes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")

    def handle(self, *args, dry_run=False, **options):
        counts = retention.apply(dry_run=dry_run)
        verb = "would delete" if dry_run else "deleted"
        for kind, count in counts.items():
            shown = "failed (see the log)" if count is None else f"{verb} {count}"
            self.stdout.write(f"{kind}: {shown}")
