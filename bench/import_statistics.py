"""The portal-user import right after a contacts load into a new account, with and without the
load analysing what it changed (helpers/planner_statistics.py): the first import batches.

    cd /work/main
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_admin_bench_import_stats \\
        .venv/bin/python bench/import_statistics.py [--contacts 50000] [--batch 5000] [--batches 1]

The fault it reproduces: right after 50,000 contacts were loaded into a new account, each
5,000-row lookup of the portal-user import took over 60 s instead of about 0.1 s, because
PostgreSQL's planner still believed the account had one contact and chose a nested loop. Both
runs start from the same state: the database's tenant tables emptied (TRUNCATE ... CASCADE: the
database must belong to this bench alone), autovacuum off for the contacts and users tables (as
on a server where it is behind), an older account's 200 contacts analysed (a production table
before the new account arrives). Then the new account's contacts come in through the contacts
import (`imports.contacts_import.apply`, batches of 500), and the portal-user import
(`imports.portal_users.apply`, no activation emails) runs over the same contacts, timed batch by
batch for `--batches` batches. The first run has the load's analysis switched off, the second
runs the code as it is. Job files go to $TMPDIR/portal_admin_bench_import_stats (MEDIA_ROOT).
"""

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal_admin.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-any-deploy-0123456789")
os.environ["DEBUG"] = "false"
os.environ["SECURE_SSL_REDIRECT"] = "false"
os.environ.setdefault(
    "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_admin_bench_import_stats"
)
os.environ.setdefault(
    "MEDIA_ROOT", str(Path(tempfile.gettempdir()) / "portal_admin_bench_import_stats")
)
os.environ["CELERY_BROKER_URL"] = ""  # no email is queued: activation emails are off

import django  # noqa: E402

django.setup()

from django.core.files.base import ContentFile  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from accounts.models import AuditEvent, PortalAccount, Role, User  # noqa: E402
from bench.users_page import ensure_database, require_postgres  # noqa: E402
from contacts.models import CONTACT_ID_LENGTH, Contact  # noqa: E402
from imports import contacts_import, planner_statistics, portal_users  # noqa: E402
from imports.models import ImportJob  # noqa: E402

TABLES = (Contact._meta.db_table, User._meta.db_table)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=50_000, help="contacts loaded")
    parser.add_argument("--batch", type=int, default=5_000, help="rows per import batch")
    parser.add_argument("--batches", type=int, default=1, help="import batches timed")
    return parser.parse_args()


class Enough(Exception):
    """The batches to time are done."""


def sql(statement, params=None):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def reset():
    # Audit events have no foreign key (they keep their ids), so CASCADE does not reach them.
    sql(
        f"TRUNCATE {PortalAccount._meta.db_table}, {AuditEvent._meta.db_table} "
        "RESTART IDENTITY CASCADE"
    )
    for table in TABLES:
        sql(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    older = PortalAccount.objects.create(name="Older", slug="older", partner_licenses=1000)
    Contact.objects.bulk_create(
        [Contact(portal_account=older, name=f"Old {i}", email=f"o{i}@x.test") for i in range(200)]
    )
    for table in TABLES:
        sql(f"ANALYZE {table}")


def job_for(account, name, text, **fields):
    job = ImportJob(portal_account=account, original_filename=name, **fields)
    job.source_file.save(name, ContentFile(text.encode()), save=False)
    job.save()
    return job


def contact_id(index):
    return f"B{index:0{CONTACT_ID_LENGTH - 1}d}"


def run(label, count, batch_size, batches, analyse):
    reset()
    account = PortalAccount.objects.create(
        name=f"New {label}", slug=f"new-{label}", partner_licenses=count + 10
    )
    Role.objects.create(portal_account=account, name="Partner User", user_type="partner")
    lines = ["ContactId,Name,Email"]
    lines += [f"{contact_id(i)},Person {i},p{i}@example.com" for i in range(count)]
    contacts_job = job_for(
        account, "contacts.csv", "\n".join(lines), target=ImportJob.Target.CONTACTS
    )
    analysed = []
    real_analyze = planner_statistics.analyze

    def counted(model):
        analysed.append(model.__name__)
        real_analyze(model)

    planner_statistics.analyze = counted
    added = planner_statistics.LoadStatistics.added
    if not analyse:
        planner_statistics.LoadStatistics.added = lambda self, count: False
    try:
        started = time.perf_counter()
        contacts_import.apply(contacts_job)
        load_seconds = time.perf_counter() - started
        estimate = planner_statistics.estimated_rows(Contact, account.pk)

        lines = ["ContactId,Role", *(f"{contact_id(i)},Partner User" for i in range(count))]
        users_job = job_for(
            account,
            "users.csv",
            "\n".join(lines),
            options={"send_activation": False},
        )
        times = []
        last = time.perf_counter()

        def timed(job):
            nonlocal last
            now = time.perf_counter()
            times.append(now - last)
            last = now
            if len(times) >= batches:
                raise Enough

        with contextlib.suppress(Enough):
            portal_users.apply(users_job, batch_size=batch_size, progress=timed)
    finally:
        planner_statistics.analyze = real_analyze
        planner_statistics.LoadStatistics.added = added
    contacts_analyses = analysed.count("Contact")
    print(
        f"{label}: contacts load {count:,} rows in {load_seconds:.1f} s "
        f"({contacts_analyses} ANALYZE of contacts); planner's estimate of the account: "
        f"{estimate:,.0f} contacts; import batches of {batch_size:,}: "
        + ", ".join(f"{seconds:.2f} s" for seconds in times),
        flush=True,
    )
    return times


def loadavg():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main():
    args = parse_args()
    require_postgres()
    ensure_database()
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        print(cursor.fetchone()[0])
    print(f"load average before: {loadavg()}", flush=True)
    without = run("without", args.contacts, args.batch, args.batches, analyse=False)
    with_fix = run("with", args.contacts, args.batch, args.batches, analyse=True)
    for table in TABLES:
        sql(f"ALTER TABLE {table} RESET (autovacuum_enabled)")
    print(f"load average after: {loadavg()}")
    print()
    print(f"{'first import batches':<34} {'without the analysis':>22} {'with it':>10}")
    for index, (slow, fast) in enumerate(zip(without, with_fix, strict=True), 1):
        print(f"{'batch ' + str(index):<34} {slow:>20.2f} s {fast:>8.2f} s")
    print(f"ratio of the first batch: {without[0] / with_fix[0]:,.0f}x")


if __name__ == "__main__":
    main()
