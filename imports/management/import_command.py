"""What the import commands share: find the account and the importer, store the file on an
ImportJob, validate, apply a batch at a time with a progress line, and print where the success
and failure files are. Each command says which pipeline it runs and how to describe it."""

import time
from pathlib import Path

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from accounts.models import PortalAccount, User
from imports.column_mapping import MappingError
from imports.csv_reader import CsvError
from imports.models import ImportJob
from imports.pipeline import failure_counts

BAD_FILE = 2


class ImportCommand(BaseCommand):
    pipeline = None  # a module with validate, apply and REASON_LABELS
    target = ImportJob.Target.PORTAL_USERS
    file_help = ""

    def add_arguments(self, parser):
        parser.add_argument("account_slug", help="The portal account's slug (its /p/<slug>/).")
        parser.add_argument("file", help=self.file_help)
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
        parser.add_argument(
            "--batch-size",
            type=int,
            default=self.pipeline.BATCH_SIZE,
            help=f"Rows per transaction (default: {self.pipeline.BATCH_SIZE}).",
        )

    # What each command says for itself.

    def job_options(self, options):
        return {}

    def validate_arguments(self, account, job_options):
        """The arguments after the source that the pipeline's validate() takes."""
        return (account,)

    def done_counts(self, job):
        return f"{job.total_rows:,} rows, {job.created:,} created, {job.failed:,} failed."

    def print_report(self, report):
        raise NotImplementedError

    # The shared run.

    def handle(self, *args, account_slug, file, dry_run, as_email, batch_size, **options):
        account = PortalAccount.objects.filter(slug=account_slug).first()
        if account is None:
            raise CommandError(f"No portal account with the slug '{account_slug}'.")
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No file at {path}.")
        by = self._importer(account, as_email) if as_email else None
        job_options = self.job_options(options)
        validate_arguments = self.validate_arguments(account, job_options)
        if dry_run:
            with path.open("rb") as source:
                report = self._bad_file_is_an_error(
                    self.pipeline.validate, source, *validate_arguments
                )
            self.print_report(report)
            return
        with path.open("rb") as source:
            job = ImportJob(
                portal_account=account,
                target=self.target,
                original_filename=path.name,
                options=job_options,
                started_by=by,
            )
            job.source_file.save(path.name, File(source), save=False)
            job.save()
        self._bad_file_is_an_error(self.pipeline.validate, job, *validate_arguments)
        self._apply_with_progress(job, batch_size)

    def _apply_with_progress(self, job, batch_size):
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
            self.pipeline.apply, job, batch_size=batch_size, progress=progress
        )
        if tty:
            self.stdout.write("")
        elapsed = time.monotonic() - started
        rate = job.processed / elapsed if elapsed > 0 else 0.0
        self.stdout.write(
            f"Import {job.pk} done in {elapsed:.1f} s ({rate:,.0f} rows/s): {self.done_counts(job)}"
        )
        for code, count in sorted(failure_counts(job).items()):
            label = self.pipeline.REASON_LABELS.get(code, code)
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
