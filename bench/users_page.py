"""Users page latency at scale: seeds a portal account of 100,000 users (and one of --users,
e.g. 1,000,000) on PostgreSQL and prints, side by side for each size, the median and p95 server
time of the page's tabs, a search, a contact-id search, a deep page and a sort, with the query
count of each and EXPLAIN ANALYZE of the slowest query of any slow case. The cost must not grow
with the account: the 1,000,000 column should read like the 100,000 one.

    cd /work/main && DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_admin_bench \\
        .venv/bin/python bench/users_page.py [--users 1000000] [--repeat 30] [--reseed]

The page is requested in-process through django.test.Client, so the figures are the server's
work (middleware, queries, template) without network or WSGI server overhead.
"""

import argparse
import hashlib
import logging
import math
import os
import random
import statistics
import string
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

# The bench runs like production (DEBUG off, so no query log slows it down), over plain HTTP
# through the test client, with a throwaway key: none of these may come from the real deploy.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal_admin.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-any-deploy-0123456789")
os.environ["DEBUG"] = "false"
os.environ["SECURE_SSL_REDIRECT"] = "false"
os.environ["ALLOWED_HOSTS"] = "testserver,127.0.0.1,localhost"

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models import NOT_PROVIDED, Count  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import (  # noqa: E402
    EmailKind,
    LoginToken,
    OutboxEmail,
    PortalAccount,
    Role,
    TokenPurpose,
    User,
    UserKind,
    UserState,
    UserType,
)
from accounts.user_listing import PAGE_SIZE  # noqa: E402
from contacts.models import CONTACT_ID_LENGTH, Contact  # noqa: E402
from helpers import bulk_sql  # noqa: E402

TARGET_MS = 100
BATCH = 5_000
BASE_USERS = 100_000
SMALL_SLUG, SMALL_NAME, SMALL_USERS = "bench-small", "Bench Small Portal", 500
ADMIN_EMAIL = "bench-admin@example.com"
# Starts with "!", so Django treats it as an unusable password; skips 100k hashings.
UNUSABLE_PASSWORD = "!bench-seeded-user-no-password"
# Matches Lockwell, Lockwood and Lockworth: a few hundred users in the big account.
SEARCH_TERM = "lockw"
# Too short for a trigram index to help, and matches a third of the account: the worst search.
BROAD_SEARCH_TERM = "an"
DEEP_PAGE = 1000


def _words(text):
    """Word lists as text: a line of names reads better than a column of quoted strings."""
    return text.split()


FIRST_NAMES = _words(
    "Ada Alan Alice Amir Anna Aria Ben Bianca Carla Chen Chloe Dana Daniel David Elena Eli Emma "
    "Eva Felix Fatima Grace Hana Hugo Ines Ivan Jack Jana Jonas Julia Kai Karen Ken Lara Leo "
    "Lina Lucas Maya Marco Maria Mia Nadia Nina Noah Olga Omar Oscar Paula Pedro Priya Rafael "
    "Rosa Ruth Sam Sara Sofia Tariq Tom Uma Victor Wei Yara Yusuf Zoe"
)
# 40 roots x 15 endings = 600 surnames, so a surname search matches a few hundred users, not
# thousands, as it would in a real customer base.
SURNAME_ROOTS = _words(
    "Ash Black Brad Brook Clay Crane Dal Dun Ever Fair Fen Ford Gar Gold Hal Hart Hay Kings Lang "
    "Lock Mar Mill Mor North Oak Pem Ral Red Rock Roth Sand Shel Stan Stock Thorn Wal Wake West "
    "Whit Wood"
)
SURNAME_ENDINGS = _words("ley ton well field wood by er man son worth more ham ridge stone brook")
SURNAMES = [root + ending for root in SURNAME_ROOTS for ending in SURNAME_ENDINGS]
COMPANIES = [
    f"{a} {b}"
    for a in _words("Acme Globex Initech Umbrella Stark Wayne Hooli Vandelay Soylent Tyrell")
    for b in ("Corp", "Systems", "Security")
]
ROLES = ["Viewer", "Analyst", "Billing", "Support", "Partner Manager"]
ID_ALPHABET = string.ascii_letters + string.digits


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--users",
        type=int,
        default=BASE_USERS,
        help=f"users in the big account, measured beside one of {BASE_USERS:,}",
    )
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per case")
    parser.add_argument("--reseed", action="store_true", help="wipe and seed the accounts again")
    return parser.parse_args()


def require_postgres():
    if connection.vendor != "postgresql":
        print(
            f"This bench needs PostgreSQL; the database is {connection.vendor}.\n"
            "Set DATABASE_URL to a PostgreSQL database (each bench's README line names one).",
            file=sys.stderr,
        )
        sys.exit(2)


def ensure_database():
    """CREATE DATABASE through the maintenance database: Django cannot connect to a missing one."""
    import psycopg
    from psycopg import sql

    db = settings.DATABASES["default"]
    params = {
        "dbname": "postgres",
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
    }
    with psycopg.connect(**{k: v for k, v in params.items() if v}, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))
            print(f"created database {db['NAME']}")


def ensure_admin():
    admin = User.objects.filter(email=ADMIN_EMAIL, portal_account__isnull=True).first()
    if admin is None:
        admin = User.objects.create_staff(
            ADMIN_EMAIL, "x" * 20, name="Bench Admin", kind=UserKind.MSSP_ADMIN
        )
    return admin


# --- Seeding -------------------------------------------------------------------------------


def wipe_account(slug):
    """Through the ORM, so every foreign key (audit log, outbox, tokens, sessions) is honoured;
    slow at 100k users, but only --reseed or a changed --users gets here."""
    account = PortalAccount.objects.filter(slug=slug).first()
    if account is None:
        return
    with transaction.atomic():
        LoginToken.objects.filter(user__portal_account=account).delete()
        OutboxEmail.objects.filter(portal_account=account).delete()
        User.objects.filter(portal_account=account).update(disabled_by=None)
        User.objects.filter(portal_account=account).delete()
        Contact.objects.filter(portal_account=account).delete()
        account.delete()


def _contact_id(rng):
    return "003" + "".join(rng.choices(ID_ALPHABET, k=CONTACT_ID_LENGTH - 3))


def _token_hash(slug, user_pk, purpose):
    return hashlib.sha256(f"bench:{slug}:{user_pk}:{purpose}".encode()).hexdigest()


def _fake_user(rng, account, roles, admin, index, now):
    """One portal user (and its CRM contact for partners and customers), with the timestamps
    its state implies."""
    first, surname = rng.choice(FIRST_NAMES), rng.choice(SURNAMES)
    company = rng.choice(COMPANIES)
    domain = company.lower().replace(" ", "-") + ".example"
    name = f"{first} {surname}"
    email = f"{first}.{surname}.{index}@{domain}".lower()
    user_type = rng.choices(
        [UserType.PARTNER, UserType.CUSTOMER, UserType.EMPLOYEE], weights=[30, 50, 20]
    )[0]
    state = rng.choices(
        [UserState.ENABLED, UserState.DISABLED, UserState.UNCONFIRMED], weights=[60, 15, 25]
    )[0]
    contact = None
    if user_type != UserType.EMPLOYEE:
        contact = Contact(
            portal_account=account,
            contact_id=_contact_id(rng),
            name=name,
            email=email,
            crm_account_name=company,
            source=Contact.Source.CRM,
            # The CRM's recycle bin: these users show on the Disabled tab whatever their state.
            deleted_at=now - timedelta(days=rng.randint(1, 90)) if rng.random() < 0.01 else None,
        )
    invited_at = now - timedelta(days=rng.randint(1, 900), minutes=rng.randint(0, 1439))
    user = User(
        kind=UserKind.PORTAL,
        portal_account=account,
        user_type=user_type,
        contact=contact,
        role=rng.choice(roles[user_type]),  # a role of the user's type, as lifecycle gives
        state=state,
        name=name,
        email=email,
        password=UNUSABLE_PASSWORD,
        invited_at=invited_at,
        last_invited_at=invited_at,
    )
    if state == UserState.UNCONFIRMED:
        # Some were reinvited since; the newest invitation may already have expired.
        if rng.random() < 0.4:
            user.last_invited_at = invited_at + (now - invited_at) * rng.random()
    else:
        user.activated_at = invited_at + timedelta(hours=rng.randint(1, 96))
        if rng.random() < 0.85:
            user.last_login = user.activated_at + (now - user.activated_at) * rng.random()
    if state == UserState.DISABLED:
        user.disabled_at = (user.last_login or user.activated_at) + timedelta(
            days=rng.randint(1, 30)
        )
        user.disabled_by = admin if rng.random() < 0.7 else None
    return user, contact


def _tokens_and_emails(rng, account, users, now):
    """What the page's subqueries look up: unconfirmed users hold a live (or expired) invitation
    and its outbox row; activated users a used one; a few enabled users got a later email."""
    lifetime = settings.TOKEN_LIFETIMES["activation"]
    tokens, emails = [], []
    for user in users:
        if user.state == UserState.UNCONFIRMED:
            tokens.append(
                LoginToken(
                    user=user,
                    purpose=TokenPurpose.ACTIVATION,
                    token_hash=_token_hash(account.slug, user.pk, "activation"),
                    expires_at=user.last_invited_at + lifetime,
                )
            )
            status = rng.choices(
                [OutboxEmail.Status.SENT, OutboxEmail.Status.FAILED, OutboxEmail.Status.PENDING],
                weights=[85, 8, 7],
            )[0]
            failed = status == OutboxEmail.Status.FAILED or (
                status == OutboxEmail.Status.PENDING and rng.random() < 0.5
            )
            emails.append(
                OutboxEmail(
                    portal_account=account,
                    user=user,
                    to_email=user.email,
                    kind=EmailKind.INVITATION,
                    status=status,
                    attempts=rng.randint(1, 8) if failed else 1,
                    last_error="550 5.1.1 Mailbox unavailable" if failed else "",
                    queued_at=user.last_invited_at,
                    sent_at=user.last_invited_at if status == OutboxEmail.Status.SENT else None,
                    subject="You are invited to the portal",
                )
            )
        else:
            tokens.append(
                LoginToken(
                    user=user,
                    purpose=TokenPurpose.ACTIVATION,
                    token_hash=_token_hash(account.slug, user.pk, "activation"),
                    expires_at=user.invited_at + lifetime,
                    used_at=user.activated_at,
                )
            )
            if user.state == UserState.ENABLED and rng.random() < 0.1:
                emails.append(
                    OutboxEmail(
                        portal_account=account,
                        user=user,
                        to_email=user.email,
                        kind=rng.choice([EmailKind.PASSWORD_RESET, EmailKind.LOGIN_LINK]),
                        status=OutboxEmail.Status.SENT,
                        attempts=1,
                        queued_at=now,
                        sent_at=now,
                        subject="Your portal sign-in",
                    )
                )
    return tokens, emails


def seed_account(slug, name, n_users, admin, reseed):
    """Returns (account, seconds spent seeding, or None when it was already there)."""
    account = PortalAccount.objects.filter(slug=slug).first()
    if account is not None and not reseed and account.users.count() == n_users:
        return account, None
    started = time.perf_counter()
    wipe_account(slug)
    rng = random.Random(f"{slug}:{n_users}")  # the same data every time, so runs compare
    now = timezone.now()
    with transaction.atomic():
        account = PortalAccount.objects.create(
            name=name,
            slug=slug,
            partner_licenses=n_users,
            customer_licenses=n_users,
            employee_licenses=n_users,
        )
        roles = {
            user_type: Role.objects.bulk_create(
                [
                    Role(
                        portal_account=account, name=f"{r} ({user_type.label})", user_type=user_type
                    )
                    for r in ROLES
                ]
            )
            for user_type in UserType
        }
        for start in range(0, n_users, BATCH):
            pairs = [
                _fake_user(rng, account, roles, admin, index, now)
                for index in range(start, min(start + BATCH, n_users))
            ]
            if start == 0:
                # The account's admin seat, so the page also renders the "your own seat" case.
                pairs[0][0].state = UserState.ENABLED
                pairs[0][0].is_account_admin = True
                pairs[0][0].activated_at = pairs[0][0].invited_at
            copy_objects(Contact, [c for _, c in pairs if c is not None])
            users = copy_objects(User, [u for u, _ in pairs])
            tokens, emails = _tokens_and_emails(rng, account, users, now)
            copy_objects(LoginToken, tokens)
            copy_objects(OutboxEmail, emails)
    return account, time.perf_counter() - started


def copy_objects(model, objects):
    """bulk_create through COPY (helpers.bulk_sql.insert, as the import writes): the ORM's
    INSERTs took about an hour for 1,000,000 users and their rows."""
    fields = [
        field
        for field in model._meta.concrete_fields
        if not field.primary_key
        and not getattr(field, "auto_now", False)
        and not getattr(field, "auto_now_add", False)
        and field.db_default is NOT_PROVIDED
    ]
    rows = []
    for obj in objects:
        row = []
        for field in fields:
            if field.is_relation and field.is_cached(obj):
                related = getattr(obj, field.name)  # saved since the object was made
                row.append(related.pk if related is not None else None)
            else:
                row.append(getattr(obj, field.attname))
        rows.append(tuple(row))
    ids = bulk_sql.insert(model, [field.attname for field in fields], rows, returning_ids=True)
    for obj, pk in zip(objects, ids, strict=True):
        obj.pk = pk
    return objects


def vacuum_analyze():
    """Production tables are kept vacuumed and analysed by autovacuum; right after a bulk load
    they are not, and the planner would misjudge and index-only scans would hit the heap."""
    tables = [m._meta.db_table for m in (User, Contact, LoginToken, OutboxEmail, Role)]
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f'VACUUM (ANALYZE) "{table}"')


# --- Measuring -----------------------------------------------------------------------------


def p95(samples):
    ordered = sorted(samples)
    return ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)]


def get_page(client, url):
    response = client.get(url)
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}, not 200: check the bench setup")
    return response


def explain(sql):
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def cases(account, admin):
    enabled_with_contact = (
        User.objects.filter(
            portal_account=account,
            state=UserState.ENABLED,
            contact__isnull=False,
            contact__deleted_at__isnull=True,
        )
        .order_by("pk")
        .values_list("contact__contact_id", flat=True)
    )
    contact_id = enabled_with_contact[enabled_with_contact.count() // 2]
    return [
        ("enabled tab, page 1", {}),
        ("disabled tab, page 1", {"tab": "disabled"}),
        ("unconfirmed tab, page 1", {"tab": "unconfirmed"}),
        (f'search "{SEARCH_TERM}"', {"q": SEARCH_TERM}),
        ("search by exact contact id", {"q": contact_id}),
        (f"enabled tab, page {DEEP_PAGE}", {"page": DEEP_PAGE}),
        ("enabled, sort by last sign-in", {"sort": "last_login"}),
        (f'broad search "{BROAD_SEARCH_TERM}"', {"q": BROAD_SEARCH_TERM}),
        ("filter: customers, not in 90 days", {"type": "customer", "signed_in": "90"}),
        ("filter: one role", {"role": account.roles.order_by("name").first().pk}),
        ("filter: CRM account", {"crm": COMPANIES[0]}),
        # Not the users page: the orphans (users whose contact was deleted, 1 % of them), newest
        # deletion first, through the same guard against cost that grows with the account.
        ("orphaned users, page 1", {}, "orphaned-users"),
        ("orphaned users, page 2", {"page": 2}, "orphaned-users"),
    ]


def measure(client, url, repeat):
    """Returns the timings, the queries of one request and how many rows that request showed
    (so an empty page, e.g. a page number past the end, cannot pass for a fast one)."""
    get_page(client, url)  # warm-up: templates, the session's first write, PostgreSQL's caches
    with CaptureQueriesContext(connection) as captured:
        content = get_page(client, url).content
        rows = content.count(b'name="ids"') or content.count(b'<tr id="orphan-')
    # A copy now: captured_queries reads the connection's log, which the next request clears.
    queries = list(captured.captured_queries)
    samples, cpu = [], []
    for _ in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        get_page(client, url)
        samples.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
    return samples, queries, rows, cpu


def print_diagnosis(label, url, queries, explained):
    """The queries of one request, and the plan of the slowest one not explained yet (the tab
    counts are the same query in every case; one plan of it is enough)."""
    print(f"\n=== {label}: {url}")
    print("queries of one request (ms as logged, with the debug cursor's overhead):")
    for query in queries:
        print(f"  {float(query['time']) * 1000:8.1f}  {query['sql'][:110]}")
    by_time = sorted(queries, key=lambda query: float(query["time"]), reverse=True)
    fresh = [query for query in by_time if query["sql"] not in explained]
    if not fresh or float(fresh[0]["time"]) < float(by_time[0]["time"]) / 4:
        print(f"\nslowest query: the same as in {explained[by_time[0]['sql']]!r}, see above")
        return
    explained[fresh[0]["sql"]] = label
    print(f"\nslowest query not shown yet:\n{fresh[0]['sql']}\n")
    print(explain(fresh[0]["sql"]))


def print_table(results, sizes):
    """One line per case, each size's median, p95, queries and rows side by side."""
    header = f"{'case':<34}"
    for size in sizes:
        header += f" | {f'{size:,} users':^37}"
    print(f"\n{header}")
    columns = f" | {'median':>7} {'p95':>7} {'cpu':>7} {'queries':>7} {'rows':>4}"
    print(f"{'':<34}" + columns * len(sizes))
    failed = 0
    for label, by_size in results.items():
        line = f"{label[:34]:<34}"
        for size in sizes:
            _url, samples, queries, rows, cpu = by_size[size]
            line += f" | {statistics.median(samples):>7.1f} {p95(samples):>7.1f}"
            line += f" {statistics.median(cpu):>7.1f}"
            line += f" {len(queries):>7} {rows:>4}"
            failed += p95(samples) >= TARGET_MS
        print(line)
    verdict = "PASS" if not failed else f"FAIL ({failed} case(s) at or over)"
    print("cpu: the median CPU time of the web process per request (the Python side, which the")
    print("machine's other load does not change); queries run in PostgreSQL's processes.")
    print(f"times in ms; target p95 < {TARGET_MS} ms in every case at every size: {verdict}")


def signed_in_with_a_code(person):
    """A console session past the second factor, as MSSP staff have one."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    client = Client()
    client.force_login(person, backend="accounts.backends.ConsoleBackend")
    device, _ = TOTPDevice.objects.get_or_create(user=person, confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def main():
    args = parse_args()
    logging.disable(logging.INFO)  # the access log of every timed request
    require_postgres()
    ensure_database()
    call_command("migrate", verbosity=0)
    admin = ensure_admin()

    sizes = sorted({BASE_USERS, args.users})
    accounts, seeded = {}, []
    for size in sizes:
        slug = f"bench-{size}"
        accounts[size], seconds = seed_account(
            slug, f"Bench Portal of {size:,}", size, admin, args.reseed
        )
        seeded.append((slug, size, seconds))
    # A small tenant, so that a missing or unused portal-account filter shows in the plans.
    _, small_seconds = seed_account(SMALL_SLUG, SMALL_NAME, SMALL_USERS, admin, args.reseed)
    seeded.append((SMALL_SLUG, SMALL_USERS, small_seconds))
    # Also after a skipped seed: a migration may have added an index whose statistics are
    # missing (expression indexes need ANALYZE); on vacuumed tables it takes a second.
    vacuum_started = time.perf_counter()
    vacuum_analyze()
    vacuum_seconds = time.perf_counter() - vacuum_started
    for slug, size, seconds in seeded:
        done = "already there (--reseed to redo)" if seconds is None else f"{seconds:.1f} s"
        print(f"seed {slug}: {size:,} users, {done}")
    print(f"VACUUM ANALYZE: {vacuum_seconds:.1f} s")

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('server_version'), current_setting('jit'), "
            "current_setting('work_mem'), current_setting('shared_buffers')"
        )
        pg_version, jit, work_mem, shared_buffers = cursor.fetchone()
    print(
        f"PostgreSQL {pg_version} (jit {jit}, work_mem {work_mem}, "
        f"shared_buffers {shared_buffers}); page size {PAGE_SIZE}; "
        f"{args.repeat} timed requests per case"
    )
    for account in accounts.values():
        counts = {
            row["state"]: row["n"]
            for row in account.users.values("state").annotate(n=Count("pk")).order_by()
        }
        states = ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()))
        print(f"{account.slug}: {sum(counts.values()):,} users ({states})")
    # The web process and PostgreSQL share this machine's CPUs: a busy machine (a test run
    # next door) shows in the figures, so say how busy it was.
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} before")

    client = signed_in_with_a_code(admin)
    results = {}  # case label -> {size: (url, samples, queries, rows)}
    for size, account in accounts.items():
        for label, params, *page in cases(account, admin):
            url = reverse(page[0] if page else "users", args=[account.slug])
            url += "?" + urlencode(params) if params else ""
            results.setdefault(label, {})[size] = (url, *measure(client, url, args.repeat))
    print(f"machine: load average {os.getloadavg()[0]:.2f} after")
    print_table(results, sizes)

    explained = {}
    for label, by_size in results.items():
        for size, (url, samples, queries, _rows, _cpu) in by_size.items():
            if p95(samples) >= TARGET_MS:
                print_diagnosis(f"{label} at {size:,} users", url, queries, explained)


if __name__ == "__main__":
    # Plain storage: the manifest storage of DEBUG=false needs collectstatic, which the bench
    # does not need to run; the URL it renders costs the same.
    with override_settings(
        STORAGES={
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
        STATIC_ROOT=None,
    ):
        main()
