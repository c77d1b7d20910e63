"""manage.py import_portal_users ACCOUNT_SLUG FILE: the portal-user CSV import from a terminal.

Runs the same pipeline as the browser wizard (imports.portal_users): the file is stored on an
ImportJob, validated, then applied a batch at a time, with a progress line while it runs and the
paths of the success and failure files at the end. --dry-run prints the validation report and
writes nothing. A file that cannot be imported exits with code 2 and says why on stderr.
"""

import time
from pathlib import Path

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from accounts.models import PortalAccount, User, UserType
from imports import portal_users
from imports.column_mapping import MappingError
from imports.csv_reader import CsvError
from imports.models import ImportJob

BAD_FILE = 2


class Command(BaseCommand):
    help = "Create portal users from a CSV file of ContactId and Role."

    def add_arguments(self, parser):
        parser.add_argument("account_slug", help="The portal account's slug (its /p/<slug>/).")
        parser.add_argument("file", help="The CSV file: columns ContactId and Role.")
        parser.add_argument(
            "--send-activation",
            action="store_true",
            help="Email each new user an invitation (default: create them silently).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Check every row and report; change nothing."
        )
        parser.add_argument(
            "--user-type",
            choices=[UserType.PARTNER, UserType.CUSTOMER, UserType.EMPLOYEE],
            default=UserType.PARTNER,
            help="The user type of every user created (default: partner).",
        )
        parser.add_argument(
            "--as",
            dest="as_email",
            metavar="EMAIL",
            help="Who the audit log names as the importer (an MSSP staff member's email, or the "
            "account's own admin). Default: system.",
        )
        parser.add_argument("--batch-size", type=int, default=500, help="Rows per transaction.")

    def handle(self, *args, account_slug, file, dry_run, as_email, batch_size, **options):
        account = PortalAccount.objects.filter(slug=account_slug).first()
        if account is None:
            raise CommandError(f"No portal account with the slug '{account_slug}'.")
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No file at {path}.")
        by = self._importer(account, as_email) if as_email else None
        job_options = {
            "send_activation": options["send_activation"],
            "user_type": options["user_type"],
        }
        if dry_run:
            with path.open("rb") as source:
                report = self._bad_file_is_an_error(
                    portal_users.validate, source, account, None, job_options
                )
            self._print_report(report)
            return
        with path.open("rb") as source:
            job = ImportJob(
                portal_account=account,
                original_filename=path.name,
                options=job_options,
                started_by=by,
            )
            job.source_file.save(path.name, File(source), save=False)
            job.save()
        self._bad_file_is_an_error(portal_users.validate, job, account, None, job_options)
        started = time.monotonic()
        tty = self.stdout.isatty()

        def progress(job):
            elapsed = time.monotonic() - started
            rate = job.processed / elapsed if elapsed > 0 else 0.0
            text = f"{job.processed:,} / {job.total_rows:,} rows ({rate:,.0f} rows/s)"
            if tty:
                self.stdout.write("\r" + text, ending="")
                self.stdout.flush()
            else:
                self.stdout.write(text)

        self._bad_file_is_an_error(
            portal_users.apply, job, batch_size=batch_size, progress=progress
        )
        if tty:
            self.stdout.write("")
        elapsed = time.monotonic() - started
        rate = job.processed / elapsed if elapsed > 0 else 0.0
        self.stdout.write(
            f"Import {job.pk} done in {elapsed:.1f} s ({rate:,.0f} rows/s): "
            f"{job.total_rows:,} rows, {job.created:,} created, {job.failed:,} failed."
        )
        for code, count in sorted(portal_users.failure_counts(job).items()):
            label = portal_users.REASON_LABELS.get(code, code)
            self.stdout.write(f"  {label} ({code}): {count:,}")
        self.stdout.write(f"Success file: {job.success_file.path}")
        self.stdout.write(f"Failure file: {job.failure_file.path}")

    def _importer(self, account, email):
        email = email.strip().lower()
        user = (
            User.objects.filter(email__iexact=email, portal_account__isnull=True).first()
            or User.objects.filter(
                email__iexact=email, portal_account=account, is_account_admin=True
            ).first()
        )
        if user is None:
            raise CommandError(
                f"No MSSP staff member, and no admin of {account.name}, with the email {email}."
            )
        return user

    def _bad_file_is_an_error(self, function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except CsvError as error:
            raise CommandError(error.message, returncode=BAD_FILE) from error
        except MappingError as error:
            raise CommandError(" ".join(error.messages), returncode=BAD_FILE) from error

    def _print_report(self, report):
        write = self.stdout.write
        write(f"Dry run: nothing was changed. File encoding: {report.encoding}.")
        write(
            f"{report.total_rows:,} rows: {report.would_create:,} would be created, "
            f"{report.failed:,} would fail."
        )
        label = UserType(report.user_type).label
        if report.licenses_suffice:
            write(
                f"{label} licenses: {report.licenses_needed:,} needed, "
                f"{report.licenses_free:,} free: enough."
            )
        else:
            write(
                f"{label} licenses: {report.licenses_needed:,} needed but only "
                f"{report.licenses_free:,} free: not enough."
            )
        for code, entry in report.failures.items():
            write(f"{entry['label']} ({code}): {entry['count']:,}")
            for example in entry["examples"]:
                write(
                    f"  line {example['line']}: {example['contact_id'] or '(empty)'}, "
                    f"{example['role'] or '(empty)'}: {example['reason']}"
                )
