"""Contact sync throughput on PostgreSQL: a CRM connector upserting contacts in batches through
the sync endpoint (POST /api/v1/accounts/<slug>/contacts/upsert/).

    cd /work/main && DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_admin_bench_sync \\
        .venv/bin/python bench/sync.py [--contacts 10000] [--batch 500]

Requests go through Django's test client, in-process, with the Bearer token: the times cover
the token check, JSON, validation, queries and the answer, without network or a WSGI server.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal_admin.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-any-deploy-0123456789")
os.environ["DEBUG"] = "false"
os.environ["SECURE_SSL_REDIRECT"] = "false"
os.environ["ALLOWED_HOSTS"] = "testserver,127.0.0.1,localhost"
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_admin_bench_sync")

import warnings  # noqa: E402

import django  # noqa: E402

# whitenoise notes the missing collectstatic folder once; no static file is served here.
warnings.filterwarnings("ignore", message="No directory at")
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402

from accounts.models import AuditEvent, PortalAccount  # noqa: E402
from api import api_tokens  # noqa: E402
from bench.users_page import ensure_database, require_postgres  # noqa: E402
from contacts.models import Contact  # noqa: E402
from contacts.salesforce_ids import to_18  # noqa: E402

SLUG, NAME = "bench-sync", "Bench Sync Portal"
TARGET_SECONDS_PER_10K = 10  # "seconds for 10,000": at least 1,000 contacts/s


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500, help="contacts a request (max 1000)")
    return parser.parse_args()


def fresh_account():
    """The bench's account, emptied: its contacts, tokens and audit events go with it."""
    old = PortalAccount.objects.filter(slug=SLUG).first()
    if old is not None:
        AuditEvent.objects.filter(portal_account=old).delete()
        old.delete()
    return PortalAccount.objects.create(name=NAME, slug=SLUG)


def contact(index, *, changed=False):
    salesforce_15 = f"0035g{index:010d}"
    return {
        "contact_id": f"003BENCH{index:011d}",
        "salesforce_id": to_18(salesforce_15),
        "name": f"Contact {index}{' (renamed)' if changed else ''}",
        "email": f"contact{index}@customer{index % 500}.example",
        "crm_account_name": f"Customer {index % 500}",
    }


def bodies(count, size, changed_every=0):
    """The JSON bodies of a pass, encoded beforehand: the connector's work is not timed."""
    items = [
        contact(i, changed=bool(changed_every) and i % changed_every == 0) for i in range(count)
    ]
    return [
        json.dumps({"contacts": items[start : start + size]}) for start in range(0, count, size)
    ]


class QueryCounter:
    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def run_pass(client, url, label, batches, expected):
    totals = {"created": 0, "updated": 0, "unchanged": 0}
    queries, times = [], []
    started = time.perf_counter()
    for body in batches:
        counter = QueryCounter()
        began = time.perf_counter()
        with connection.execute_wrapper(counter):
            response = client.post(url, body, content_type="application/json")
        times.append(time.perf_counter() - began)
        if response.status_code != 200:
            sys.exit(f"{label}: HTTP {response.status_code}: {response.content[:500]!r}")
        answer = response.json()
        for key in totals:
            totals[key] += answer[key]
        queries.append(counter.count)
    seconds = time.perf_counter() - started
    contacts = sum(totals.values())
    ok = totals == expected
    print(
        f"{label:<28} {contacts:>7,} {seconds:>8.2f} {contacts / seconds:>11,.0f} "
        f"{min(queries):>4}-{max(queries):<4} {1000 * max(times):>8.0f}   "
        f"{totals['created']:>6,} {totals['updated']:>6,} {totals['unchanged']:>6,}"
        f"{'' if ok else '   UNEXPECTED, wanted ' + str(expected)}"
    )
    return contacts, seconds, ok


def main():
    args = parse_args()
    require_postgres()
    ensure_database()
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    print(f"PostgreSQL {version}; load average before: {os.getloadavg()[0]:.2f}")

    account = fresh_account()
    _, secret = api_tokens.create_token(account, "Bench sync", by=None)
    client = Client(headers={"Authorization": f"Bearer {secret}"})
    url = reverse("api-sync-upsert", args=[SLUG])
    n, size = args.contacts, args.batch
    changed = n // 10

    print(f"{n:,} contacts in batches of {size} ({-(-n // size)} requests a pass)\n")
    print(
        f"{'pass':<28} {'contacts':>7} {'seconds':>8} {'contacts/s':>11} {'queries':>9} "
        f"{'max ms':>8}   {'new':>6} {'upd':>6} {'same':>6}"
    )
    passes = [
        ("1. create (all new)", bodies(n, size), {"created": n, "updated": 0, "unchanged": 0}),
        ("2. replay (idempotent)", bodies(n, size), {"created": 0, "updated": 0, "unchanged": n}),
        (
            "3. 10% changed",
            bodies(n, size, changed_every=10),
            {"created": 0, "updated": changed, "unchanged": n - changed},
        ),
    ]
    results = [run_pass(client, url, label, batches, want) for label, batches, want in passes]

    stored = Contact.objects.filter(portal_account=account).count()
    events = AuditEvent.objects.filter(portal_account=account, action="sync_contacts").count()
    print(f"\ncontacts stored: {stored:,}; sync_contacts audit events: {events} (replay adds none)")
    budget = TARGET_SECONDS_PER_10K * n / 10_000
    print(f"target: each pass of {n:,} contacts in under {budget:.0f} s")
    verdicts = []
    for (label, _, _), (_, seconds, ok) in zip(passes, results, strict=True):
        verdict = "PASS" if ok and seconds < budget else "FAIL"
        verdicts.append(verdict)
        print(f"  {label:<28} {seconds:6.2f} s  {verdict}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0 if set(verdicts) == {"PASS"} else 1


if __name__ == "__main__":
    sys.exit(main())
