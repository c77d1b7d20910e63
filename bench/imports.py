"""Portal-user CSV import throughput on PostgreSQL: our dry run and import against
django-import-export and against PostgreSQL's COPY, on one generated file.

    cd /work/main && DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_admin_bench_import \\
        .venv/bin/python bench/imports.py [--rows 100000] [--iie-rows 5000] [--big-rows 0]

Each measured thing runs in a fresh subprocess of this script (`--child ...`), so its peak memory
(VmHWM) is its own. Activation emails are ON for our import, and its outbox rows are handed to a
real Celery broker (Redis db 14 by default, emptied before and after; no worker runs, so nothing
is sent): publishing is part of the import's cost. `--broker none` counts the hand-off instead.
"""

import argparse
import csv
import json
import os
import random
import subprocess
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
os.environ["ALLOWED_HOSTS"] = "testserver,127.0.0.1,localhost"
os.environ.setdefault(
    "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_admin_bench_import"
)
# Job files (the uploaded CSV, the success and failure files) go to a scratch folder.
os.environ.setdefault("MEDIA_ROOT", str(Path(tempfile.gettempdir()) / "portal_admin_bench_import"))

import django  # noqa: E402

django.setup()

from django.contrib.auth.hashers import make_password  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Exists, OuterRef  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import (  # noqa: E402
    AuditEvent,
    PortalAccount,
    Role,
    User,
    UserKind,
    UserState,
    UserType,
)
from bench.users_page import ensure_database, require_postgres  # noqa: E402
from contacts.models import CONTACT_ID_LENGTH, Contact  # noqa: E402

SLUG, NAME = "bench-import", "Bench Import Portal"
ADMIN_EMAIL = "bench-import-admin@example.com"
ROLE, INACTIVE_ROLE = "Partner User", "Old Partner"
TARGET_ROWS_PER_S = 15_000
TARGET_RATIO_IIE = 50
TARGET_PEAK_MB = 300
CHILD_TIMEOUT_S = 900
SEED_BATCH = 10_000
BROKER = "redis://127.0.0.1:6379/14"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the file")
    parser.add_argument(
        "--iie-rows",
        type=int,
        default=5_000,
        help="rows of the file given to django-import-export (it is slow; 0: all)",
    )
    parser.add_argument(
        "--big-rows", type=int, default=0, help="also run our import on this many rows (0: skip)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=0, help="rows per batch (0: the importer's default)"
    )
    parser.add_argument(
        "--broker",
        default=BROKER,
        help=f"Celery broker our import publishes to; its database is emptied (default {BROKER}; "
        "'none': no broker, the hand-off is only counted)",
    )
    parser.add_argument("--child", choices=["validate", "apply", "iie", "copy"], help="internal")
    parser.add_argument("--file", help="internal: the CSV file of a child run")
    return parser.parse_args()


# --- Seeding: one account, contacts with bulk_create, 10 % of them with users ---


def _contact_id(index):
    return f"C{index:0{CONTACT_ID_LENGTH - 1}d}"


def reset_and_seed(contacts_count):
    """Empty the bench database's tenant tables and seed the account again (same data each time).
    The database belongs to this bench alone."""
    # Audit events are named too: no foreign key ties them to the users (they keep their ids),
    # so CASCADE does not reach them.
    tables = [PortalAccount, User, Contact, AuditEvent]
    tables = [model._meta.db_table for model in tables]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    User.objects.create_staff(ADMIN_EMAIL, None, name="Bench Admin", kind=UserKind.MSSP_ADMIN)
    account = PortalAccount.objects.create(
        name=NAME, slug=SLUG, partner_licenses=10_000_000, customer_licenses=0
    )
    role = Role.objects.create(portal_account=account, name=ROLE, user_type=UserType.PARTNER)
    Role.objects.create(
        portal_account=account, name=INACTIVE_ROLE, user_type=UserType.PARTNER, active=False
    )
    for start in range(0, contacts_count, SEED_BATCH):
        Contact.objects.bulk_create(
            [
                Contact(
                    portal_account=account,
                    contact_id=_contact_id(i),
                    name=f"Person {i}",
                    email=f"person{i}@example.com",
                    crm_account_name="Acme Corp",
                )
                for i in range(start, min(start + SEED_BATCH, contacts_count))
            ]
        )
    # 10 % of the contacts already have a user (every tenth).
    password, now = make_password(None), timezone.now()
    with_user = list(
        Contact.objects.filter(portal_account=account).order_by("pk").values_list("pk", flat=True)
    )[::10]
    for start in range(0, len(with_user), SEED_BATCH):
        User.objects.bulk_create(
            [
                User(
                    kind=UserKind.PORTAL,
                    portal_account=account,
                    user_type=UserType.PARTNER,
                    contact_id=pk,
                    role=role,
                    name=f"Existing {pk}",
                    email=f"existing{pk}@example.com",
                    state=UserState.ENABLED,
                    invited_at=now,
                    password=password,
                )
                for pk in with_user[start : start + SEED_BATCH]
            ]
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return account


def write_file(path, rows, seed=7):
    """`rows` rows of ContactId,Role: one per contact in order (every tenth contact already has
    a user), and about 5 % bad rows: unknown ids, empty roles, the inactive role, duplicates."""
    rng = random.Random(seed)
    expected = {"bad": 0}
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["ContactId", "Role"])
        for i in range(rows):
            roll = rng.random()
            if roll < 0.0125:
                writer.writerow([f"X{i:0{CONTACT_ID_LENGTH - 1}d}", ROLE])  # unknown contact
            elif roll < 0.025:
                writer.writerow([_contact_id(i), ""])  # role missing
            elif roll < 0.0375:
                writer.writerow([_contact_id(i), INACTIVE_ROLE])
            elif roll < 0.05 and i > 0:
                writer.writerow([_contact_id(rng.randrange(i)), ROLE])  # duplicate of a row above
            else:
                writer.writerow([_contact_id(i), ROLE])
                continue
            expected["bad"] += 1
    return expected


# --- Children: each measured thing in its own process ---


def vm_kb(name):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return 0


def postgres_cpu_seconds():
    """CPU seconds used so far by the PostgreSQL server on this machine: every process of it,
    and the backends that have ended (the postmaster's reaped children). A case's import works
    over several connections (the read-ahead thread's, two batch writers'), each a backend of
    its own that ends with the run, so one backend's /proc entry would miss most of it. Other
    sessions of the server count too: run on a quiet machine."""
    ticks = 0
    processes = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # ended meanwhile
        name, rest = text.split(" (", 1)[1].rsplit(")", 1)
        if name == "postgres":
            fields = rest.split()
            processes[int(stat.parent.name)] = (int(fields[1]), fields)
    for _pid, (parent, fields) in processes.items():
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
        if parent not in processes:  # the postmaster: its ended children's time too
            ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_seconds():
    times = os.times()
    return times.user + times.system, postgres_cpu_seconds()


def add_cpu(result, before):
    python, database = cpu_seconds()
    result["python_cpu_s"] = round(python - before[0], 2)
    result["db_cpu_s"] = round(database - before[1], 2)
    return result


def child_validate(path, account, batch_size):
    from imports import portal_users

    cpu = cpu_seconds()
    start = time.perf_counter()
    with open(path, "rb") as source:
        report = portal_users.validate(
            source,
            account,
            options={"send_activation": True},
            batch_size=batch_size or portal_users.BATCH_SIZE,
        )
    seconds = time.perf_counter() - start
    return add_cpu(
        {
            "seconds": seconds,
            "rows": report.total_rows,
            "created": report.would_create,
            "failed": report.failed,
            "failures": {code: entry["count"] for code, entry in report.failures.items()},
        },
        cpu,
    )


def child_apply(path, account, batch_size, broker):
    from django.conf import settings
    from django.core.files import File

    from accounts.models import AuditEvent, OutboxEmail
    from imports import portal_users
    from imports.models import ImportJob
    from imports.pipeline import failure_counts
    from mail import tasks as mail_tasks

    handed = {"ids": 0, "messages": 0, "seconds": 0.0}
    if broker:
        if settings.CELERY_TASK_ALWAYS_EAGER or broker != settings.CELERY_BROKER_URL:
            raise SystemExit(f"the child runs without the broker {broker}")
        hand_many = mail_tasks.hand_many_to_celery

        def timed_hand_many(ids, kinds):
            started = time.perf_counter()
            hand_many(ids, kinds)
            handed["seconds"] += time.perf_counter() - started
            handed["ids"] += len(ids)
            handed["messages"] += 1

        mail_tasks.hand_many_to_celery = timed_hand_many
    else:
        # No broker: tasks would run in-process and send every email. Count the ids instead.
        def count(row_ids, kinds):
            handed["ids"] += len(row_ids)

        mail_tasks.hand_many_to_celery = count
    admin = User.objects.get(email=ADMIN_EMAIL)
    job = ImportJob(
        portal_account=account,
        original_filename=Path(path).name,
        options={"send_activation": True},
        started_by=admin,
    )
    with open(path, "rb") as source:
        job.source_file.save(Path(path).name, File(source), save=False)
    job.save()
    cpu = cpu_seconds()
    start = time.perf_counter()
    portal_users.apply(job, batch_size=batch_size or portal_users.BATCH_SIZE)
    seconds = time.perf_counter() - start
    cpu = add_cpu({}, cpu)
    job.refresh_from_db()
    result = {
        "seconds": seconds,
        "rows": job.processed,
        "created": job.created,
        "failed": job.failed,
        "failures": failure_counts(job),
        "audit_events": AuditEvent.objects.filter(portal_account=account, action="invite").count(),
        "outbox_rows": OutboxEmail.objects.filter(portal_account=account).count(),
        "outbox_ids_handed_to_celery": handed["ids"],
        **cpu,
    }
    if broker:
        result["celery_messages"] = handed["messages"]
        result["celery_messages_in_broker"] = broker_queue_length(broker)
        result["publish_seconds"] = round(handed["seconds"], 3)
    return result


def empty_broker(broker):
    import redis

    redis.Redis.from_url(broker).flushdb()


def broker_queue_length(broker):
    import redis

    return redis.Redis.from_url(broker).llen("celery")


def child_iie(path, account):
    """django-import-export as a Django team would set it up for this file: a ModelResource for
    User, ForeignKey widgets for the contact (by contact_id) and the role (by name, active roles
    of the account), insert only (the contact is the id field; existing users are skipped as
    unchanged), in one transaction."""
    import tablib
    from import_export import fields, resources, widgets

    admin_password = make_password(None)

    class AccountForeignKey(widgets.ForeignKeyWidget):
        def get_queryset(self, value, row, *args, **kwargs):
            queryset = self.model.objects.filter(portal_account=account)
            return queryset.filter(active=True) if self.model is Role else queryset

    class PortalUserResource(resources.ModelResource):
        contact = fields.Field(
            attribute="contact",
            column_name="ContactId",
            widget=AccountForeignKey(Contact, field="contact_id"),
        )
        role = fields.Field(
            attribute="role", column_name="Role", widget=AccountForeignKey(Role, field="name")
        )

        class Meta:
            model = User
            fields = ("contact", "role")
            import_id_fields = ("contact",)
            skip_unchanged = True
            report_skipped = True
            use_transactions = True

        def before_save_instance(self, instance, row, **kwargs):
            now = timezone.now()
            instance.kind = UserKind.PORTAL
            instance.portal_account = account
            instance.user_type = instance.role.user_type
            instance.state = UserState.UNCONFIRMED
            instance.name = instance.contact.name
            instance.email = instance.contact.email.lower()
            instance.invited_at = instance.last_invited_at = now
            instance.password = admin_password

    with open(path, encoding="utf-8") as file:
        dataset = tablib.Dataset().load(file.read(), format="csv")
    cpu = cpu_seconds()
    start = time.perf_counter()
    result = PortalUserResource().import_data(
        dataset, dry_run=False, use_transactions=True, raise_errors=False
    )
    seconds = time.perf_counter() - start
    cpu = add_cpu({}, cpu)
    return {
        **cpu,
        "seconds": seconds,
        "rows": result.total_rows,
        "totals": dict(result.totals),
        "row_errors": len(result.row_errors()),
        "invalid_rows": len(result.invalid_rows),
        "rolled_back": result.has_errors() or result.has_validation_errors(),
        "users_after": User.objects.filter(portal_account=account).count(),
    }


def rows_we_create(path, account):
    """(contact pk, role id, name, email, CRM account name) of each user our import creates from
    the file: the
    first row of a contact of the account without a user, with the active role (the bench's
    file has no other case)."""
    role_id = Role.objects.get(portal_account=account, name=ROLE, active=True).pk
    contacts = {
        contact_id: (pk, name, email, crm, has_user)
        for contact_id, pk, name, email, crm, has_user in Contact.objects.filter(
            portal_account=account
        )
        .annotate(has_user=Exists(User.objects.filter(contact=OuterRef("pk"))))
        .values_list("contact_id", "pk", "name", "email", "crm_account_name", "has_user")
        .iterator(chunk_size=10_000)
    }
    created, seen = [], set()
    with open(path, encoding="utf-8") as file:
        reader = csv.reader(file)
        next(reader)
        for contact_id, role in reader:
            contact = contacts.get(contact_id)
            if contact is None or contact_id in seen:
                continue
            seen.add(contact_id)
            pk, name, email, crm, has_user = contact
            if role == ROLE and not has_user:
                created.append((pk, role_id, name, email.lower(), crm))
    return created


def child_copy(path, account, batch_size):
    """The physical limit: the users our import creates from the file, with an audit event and
    an outbox row each, COPYed into the real tables (every index, constraint and trigger;
    helpers.bulk_sql.insert), in transactions of the import's batch size, each committed (the
    deferred foreign keys are checked at the commit), the ids of the users and outbox rows drawn
    from their sequences as ours are. No lookup, no rule, no file: only the writes. The rows are
    built before the clock starts. One transaction for all the rows was slower (the deferred
    checks pile up, the trigram indexes' pending lists grow), so batches it is."""
    from django.db import transaction

    from accounts import audit, bulk_invites
    from accounts.models import AuditEvent, OutboxEmail
    from helpers.bulk_sql import insert

    created = rows_we_create(path, account)
    admin = User.objects.get(email=ADMIN_EMAIL)
    now = timezone.now()
    password = make_password(None)
    account_id = account.pk
    users = [
        ("portal", account_id, "partner", pk, role_id, name, email, "unconfirmed", now, now)
        + (password, crm)
        for pk, role_id, name, email, crm in created
    ]
    snapshot = {"state": "unconfirmed", "role": ROLE, "is_account_admin": False}
    before, context = {}, {"invited_by": admin.name}
    # The columns our import writes (accounts.bulk_invites, accounts.audit), the same values.
    user_fields, outbox_fields = bulk_invites.USER_FIELDS, bulk_invites.OUTBOX_FIELDS
    audit_fields = audit.BULK_FIELDS
    actor_label = str(admin)
    cpu = cpu_seconds()
    start = time.perf_counter()
    for first in range(0, len(created), batch_size):
        batch = created[first : first + batch_size]
        with transaction.atomic():
            user_ids = insert(
                User, user_fields, users[first : first + batch_size], returning_ids=True
            )
            insert(
                AuditEvent,
                audit_fields,
                [
                    ("invite", admin.pk, actor_label, account_id, user_id, f"{name} <{email}>")
                    + (before, snapshot, None, "success", "")
                    for user_id, (_pk, _role, name, email, _c) in zip(user_ids, batch, strict=True)
                ],
            )
            insert(
                OutboxEmail,
                outbox_fields,
                [
                    (account_id, user_id, email, "invitation", context, now)
                    for user_id, (_pk, _role, _name, email, _crm) in zip(
                        user_ids, batch, strict=True
                    )
                ],
                returning_ids=True,
            )
    seconds = time.perf_counter() - start
    # Per row of the file, as ours is counted: the file's rows over the time to write its users.
    with open(path, encoding="utf-8") as file:
        file_rows = sum(1 for _ in file) - 1
    return add_cpu({"seconds": seconds, "rows": file_rows, "users": len(created)}, cpu)


def run_child(args):
    account = PortalAccount.objects.get(slug=SLUG)
    rss_start = vm_kb("VmRSS")
    if args.child == "validate":
        result = child_validate(args.file, account, args.batch_size)
    elif args.child == "apply":
        result = child_apply(args.file, account, args.batch_size, broker_of(args))
    elif args.child == "iie":
        result = child_iie(args.file, account)
    else:
        from imports import portal_users

        result = child_copy(args.file, account, args.batch_size or portal_users.BATCH_SIZE)
    result["rss_start_mb"] = rss_start / 1024
    result["peak_mb"] = vm_kb("VmHWM") / 1024
    print("RESULT " + json.dumps(result, default=str))


# --- The parent: seed, spawn, print ---


def broker_of(args):
    return None if args.broker == "none" else args.broker


def spawn(args, child, path=None, rows=None):
    command = [sys.executable, __file__, "--child", child, "--broker", args.broker]
    command += ["--batch-size", str(args.batch_size)]
    if path:
        command += ["--file", str(path)]
    if rows:
        command += ["--rows", str(rows)]
    env = os.environ.copy()
    broker = broker_of(args)
    if child == "apply" and broker:
        env["CELERY_BROKER_URL"] = broker
        empty_broker(broker)
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, env=env
        )
    finally:
        if child == "apply" and broker:
            empty_broker(broker)
    for line in completed.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    print(completed.stdout[-3000:], completed.stderr[-3000:], sep="\n", file=sys.stderr)
    raise SystemExit(f"child {child} failed (exit status {completed.returncode})")


def slice_file(path, target, rows):
    with open(path, encoding="utf-8") as source, open(target, "w", encoding="utf-8") as out:
        for index, line in enumerate(source):
            if index > rows:
                break
            out.write(line)


def loadavg():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def rate(result):
    return result["rows"] / result["seconds"] if result["seconds"] else float("inf")


def cpu_rate(result):
    """Rows per CPU second (the process's and its database backend's): about what the case
    does on an idle machine, where the two take turns; on a busy one its wall time is mostly
    waiting for a core."""
    seconds = result.get("python_cpu_s", 0) + result.get("db_cpu_s", 0)
    return result["rows"] / seconds if seconds else float("nan")


def show(label, result):
    extra = {k: v for k, v in result.items() if k not in ("seconds", "rows")}
    print(
        f"{label}: {result['rows']:,} rows in {result['seconds']:.2f} s = {rate(result):,.0f} "
        f"rows/s; {json.dumps(extra, default=str)}",
        flush=True,
    )


def main():
    args = parse_args()
    require_postgres()
    if args.child:
        run_child(args)
        return
    ensure_database()
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        print(cursor.fetchone()[0])
    print(f"load average before: {loadavg()}")
    work = Path(tempfile.mkdtemp(prefix="bench-imports-"))
    path = work / f"portal-users-{args.rows}.csv"
    expected = write_file(path, args.rows)
    print(
        f"file: {path} ({path.stat().st_size / 1e6:.1f} MB), {args.rows:,} rows, "
        f"{expected['bad']:,} bad rows by construction; 10 % of contacts already have users"
    )

    started = time.perf_counter()
    reset_and_seed(args.rows)
    print(
        f"seeded {args.rows:,} contacts and {args.rows // 10:,} users in "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )

    results = {}
    results["validate"] = spawn(args, "validate", path)
    show("ours, dry run (validate)", results["validate"])
    results["apply"] = spawn(args, "apply", path)
    show("ours, import (apply, activation emails on)", results["apply"])

    reset_and_seed(args.rows)
    iie_rows = args.iie_rows or args.rows
    iie_path = path
    if iie_rows < args.rows:
        iie_path = work / f"portal-users-{iie_rows}.csv"
        slice_file(path, iie_path, iie_rows)
    results["iie"] = spawn(args, "iie", iie_path)
    show(f"django-import-export on the first {iie_rows:,} rows", results["iie"])

    results["copy"] = spawn(args, "copy", path)
    show("the COPY limit (the same users, audit events, outbox rows)", results["copy"])

    if args.big_rows:
        big = work / f"portal-users-{args.big_rows}.csv"
        write_file(big, args.big_rows)
        reset_and_seed(args.big_rows)
        results["big"] = spawn(args, "apply", big)
        show(f"ours, import of {args.big_rows:,} rows", results["big"])

    print(f"load average after: {loadavg()}")
    print_summary(args, results)


def print_summary(args, results):
    ours, iie, limit = rate(results["apply"]), rate(results["iie"]), rate(results["copy"])
    print()
    header = f"{'case':<38} {'rows':>9} {'seconds':>8} {'rows/s':>8} {'peak MB':>7}"
    print(f"{header} {'CPU s: Python':>13} {'PostgreSQL':>10} {'rows/CPU s':>10}")
    table = [
        ("ours: dry run (validate)", results["validate"]),
        ("ours: import (apply, emails on)", results["apply"]),
        ("django-import-export (insert only)", results["iie"]),
        ("COPY limit (same rows, real tables)", results["copy"]),
    ]
    if "big" in results:
        table.append((f"ours: import, {args.big_rows:,} rows", results["big"]))
    for label, result in table:
        print(
            f"{label:<38} {result['rows']:>9,} {result['seconds']:>8.2f} {rate(result):>8,.0f} "
            f"{result['peak_mb']:>7.0f} {result.get('python_cpu_s', ''):>13} "
            f"{result.get('db_cpu_s', ''):>10} {cpu_rate(result):>10,.0f}"
        )
    print()
    both = results["validate"]["seconds"] + results["apply"]["seconds"]
    print(f"ours, dry run + import: {args.rows / both:,.0f} rows/s")
    peak = results["big"]["peak_mb"] if "big" in results else results["apply"]["peak_mb"]
    print("| bench | now | target |")
    print("| --- | --- | --- |")
    print(
        f"| `bench/imports.py`, {args.rows:,} rows, emails on | {ours:,.0f} rows/s; "
        f"django-import-export {iie:,.0f} rows/s ({ours / iie:.0f}x) | "
        f">= {TARGET_ROWS_PER_S:,} rows/s (>= {TARGET_RATIO_IIE}x django-import-export), "
        "peak memory flat |"
    )
    print()
    verdict = "PASS" if ours >= TARGET_ROWS_PER_S else "FAIL"
    print(f"ours import: {ours:,.0f} rows/s (target >= {TARGET_ROWS_PER_S:,}): {verdict}")
    ratio = ours / iie
    verdict = "PASS" if ratio >= TARGET_RATIO_IIE else "FAIL"
    print(f"ours / django-import-export: {ratio:.1f}x (target >= {TARGET_RATIO_IIE}x): {verdict}")
    print(
        f"COPY limit: {limit:,.0f} rows of the file/s ({results['copy']['users']:,} users with "
        f"their audit and outbox rows); ours / limit: {ours / limit:.2f}"
    )
    ours_cpu, limit_cpu = cpu_rate(results["apply"]), cpu_rate(results["copy"])
    print(
        f"per CPU second: ours {ours_cpu:,.0f} rows, django-import-export "
        f"{cpu_rate(results['iie']):,.0f} ({ours_cpu / cpu_rate(results['iie']):.0f}x), "
        f"COPY limit {limit_cpu:,.0f}; ours / limit: {ours_cpu / limit_cpu:.2f}"
    )
    # What the machine allows at best: every core busy with nothing but this work (the Python
    # and PostgreSQL CPU seconds per row, spread perfectly), which no import gets.
    cores = os.cpu_count()
    print(
        f"at best on {cores} cores, all busy: ours {ours_cpu * cores:,.0f} rows/s, COPY limit "
        f"{limit_cpu * cores:,.0f} rows/s (the target {TARGET_ROWS_PER_S:,} needs "
        f"{TARGET_ROWS_PER_S / cores:,.0f} rows per CPU second)"
    )
    if "big" in results:
        big = results["big"]
        verdict = "PASS" if peak < TARGET_PEAK_MB else "FAIL"
        print(
            f"{args.big_rows:,} rows: {rate(big):,.0f} rows/s, peak memory {peak:.0f} MB "
            f"(target < {TARGET_PEAK_MB}): {verdict}"
        )
    else:
        print("1,000,000-row run: not run (pass --big-rows 1000000)")


if __name__ == "__main__":
    main()
