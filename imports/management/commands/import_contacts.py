"""manage.py import_contacts ACCOUNT_SLUG FILE: the contacts CSV import from a terminal.

Runs the same pipeline as the browser wizard (imports.contacts_import): the file is stored on an
ImportJob (target: contacts), validated, then applied a batch at a time, with a progress line
while it runs and the paths of the success and failure files at the end. --dry-run prints the
validation report and writes nothing. A file that cannot be imported exits with code 2.
"""

from imports import contacts_import
from imports.management.import_command import ImportCommand
from imports.models import ImportJob


class Command(ImportCommand):
    help = (
        "Create or update contacts of a portal account from a CSV file of Name and optionally "
        "ContactId, SalesforceId, Email and Account."
    )
    pipeline = contacts_import
    target = ImportJob.Target.CONTACTS
    file_help = "The CSV file: Name, optional ContactId, SalesforceId, Email, Account."

    def done_counts(self, job):
        return (
            f"{job.total_rows:,} rows, {job.created:,} created, "
            f"{contacts_import.updated_count(job):,} updated, {job.failed:,} failed."
        )

    def print_report(self, report):
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
