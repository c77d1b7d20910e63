"""manage.py import_contacts ACCOUNT_SLUG FILE: the contacts CSV import from a terminal.

Runs the same pipeline as the browser wizard (imports.contacts_import): the file is stored on an
ImportJob (target: contacts), validated, then applied a batch at a time, with a progress line
while it runs and the paths of the success and failure files at the end. --dry-run prints the
validation report and writes nothing. A file that cannot be imported exits with code 2.
"""

import time
from pathlib import Path

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from accounts.models import PortalAccount, User
from imports import contacts_import
from imports.column_mapping import MappingError
from imports.csv_reader import CsvError
from imports.models import ImportJob

BAD_FILE = 2


class Command(BaseCommand):
    help = (
        "Create or update contacts of a portal account from a CSV file of Name and optionally "
        "ContactId, SalesforceId, Email and Account."
    )

    def add_arguments(self, parser):
        parser.add_argument("account_slug", help="The portal account's slug (its /p/<slug>/).")
        parser.add_argument(
            "file", help="The CSV file: Name, optional ContactId, SalesforceId, Email, Account."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Check every row and report; change nothing."
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
        if dry_run:
            with path.open("rb") as source:
                report = self._bad_file_is_an_error(contacts_import.validate, source, account)
            self._print_report(report)
            return
        with path.open("rb") as source:
            job = ImportJob(
                portal_account=account,
                target=ImportJob.Target.CONTACTS,
                original_filename=path.name,
                options={},
                started_by=by,
            )
            job.source_file.save(path.name, File(source), save=False)
            job.save()
        self._bad_file_is_an_error(contacts_import.validate, job, account)
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
            contacts_import.apply, job, batch_size=batch_size, progress=progress
        )
        if tty:
            self.stdout.write("")
        elapsed = time.monotonic() - started
        rate = job.processed / elapsed if elapsed > 0 else 0.0
        self.stdout.write(
            f"Import {job.pk} done in {elapsed:.1f} s ({rate:,.0f} rows/s): "
            f"{job.total_rows:,} rows, {job.created:,} created, "
            f"{contacts_import.updated_count(job):,} updated, {job.failed:,} failed."
        )
        for code, count in sorted(contacts_import.failure_counts(job).items()):
            label = contacts_import.REASON_LABELS.get(code, code)
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
            f"{report.would_update:,} would be updated, {report.failed:,} would fail."
        )
        for code, entry in report.failures.items():
            write(f"{entry['label']} ({code}): {entry['count']:,}")
            for example in entry["examples"]:
                ids = example["contact_id"] or example["salesforce_id"] or "(no id)"
                write(
                    f"  line {example['line']}: {ids}, {example['name'] or '(empty)'}: "
                    f"{example['reason']}"
                )
