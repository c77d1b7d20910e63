"""manage.py import_portal_users ACCOUNT_SLUG FILE: the portal-user CSV import from a terminal.

Runs the same pipeline as the browser wizard (imports.portal_users): the file is stored on an
ImportJob, validated, then applied a batch at a time, with a progress line while it runs and the
paths of the success and failure files at the end. --dry-run prints the validation report and
writes nothing. A file that cannot be imported exits with code 2 and says why on stderr.
"""

from django.core.management.base import CommandError

from accounts.role_names import AccountRoles, RoleNameError
from imports import portal_users
from imports.management.import_command import ImportCommand


class Command(ImportCommand):
    help = "Create portal users from a CSV file of ContactId and Role (the role decides the type)."
    pipeline = portal_users
    file_help = "The CSV file: columns ContactId and Role (Role may be left out with --role)."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--send-activation",
            action="store_true",
            help="Email each new user an invitation (default: create them silently).",
        )
        parser.add_argument(
            "--role",
            metavar="NAME",
            help="The role of rows without one (no Role column, or an empty Role cell): an "
            "active partner or customer role, named exactly. Its type is the users' type.",
        )
        # No --user-type: each row's role decides its user's type and licenses.

    def job_options(self, options):
        return {"send_activation": options["send_activation"], "role_name": options["role"]}

    def validate_arguments(self, account, job_options):
        """Turns --role into the option the pipeline reads (the role's id): a role the import
        could not give is an error before anything is read. Changed in place: the stored job
        keeps these options."""
        name = job_options.pop("role_name")
        if name is not None:
            job_options["default_role"] = self._default_role(account, name).pk
        return (account, None, job_options)

    def _default_role(self, account, name):
        try:
            role = AccountRoles(account).find(name.strip(), missing="--role needs a role name.")
        except RoleNameError as error:
            raise CommandError(f"--role: {error.message}") from None
        if not role.needs_contact:
            raise CommandError(
                f"--role: '{role.name}' is an Employee role, and the import creates users for "
                "CRM contacts. Name a partner or customer role."
            )
        return role

    def print_report(self, report):
        write = self.stdout.write
        write(f"Dry run: nothing was changed. File encoding: {report.encoding}.")
        write(
            f"{report.total_rows:,} rows: {report.would_create:,} would be created, "
            f"{report.failed:,} would fail."
        )
        for seats in report.license_lines:
            if seats["enough"]:
                write(
                    f"{seats['label']} licenses: {seats['needed']:,} needed, "
                    f"{seats['free']:,} free: enough."
                )
            else:
                write(
                    f"{seats['label']} licenses: {seats['needed']:,} needed but only "
                    f"{seats['free']:,} free: not enough."
                )
        for code, entry in report.failures.items():
            write(f"{entry['label']} ({code}): {entry['count']:,}")
            for example in entry["examples"]:
                write(
                    f"  line {example['line']}: {example['contact_id'] or '(empty)'}, "
                    f"{example['role'] or '(empty)'}: {example['reason']}"
                )
