"""Contacts page latency at scale: the bench account of bench/users_page.py (100,000 users,
with their CRM contacts) plus a quarter more contacts that have no portal user, as a CRM has,
on PostgreSQL. Prints the median and p95 server time of the list, each sort, the portal-user and
CRM account filters and a search, with the query count of each and EXPLAIN ANALYZE of the
slowest query of any slow case.

    cd /work/main && DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_admin_bench \\
        .venv/bin/python bench/contacts_page.py [--users 1000000] [--repeat 30] [--reseed]
"""

import logging
import os
import random
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import users_page as bench  # noqa: E402  (sets up Django as the users bench does)
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402

from contacts.models import Contact  # noqa: E402

CRM_ONLY_SHARE = 0.25  # contacts without a portal user, per user of the account


def add_crm_only_contacts(account, n_users):
    """The CRM's other contacts (nobody gave them a login), once per account."""
    wanted = int(n_users * CRM_ONLY_SHARE)
    have = Contact.objects.filter(portal_account=account, user__isnull=True).count()
    if have >= wanted:
        return None
    started = time.perf_counter()
    rng = random.Random(f"{account.slug}:crm-only")
    for start in range(have, wanted, bench.BATCH):
        batch = []
        for index in range(start, min(start + bench.BATCH, wanted)):
            first, surname = rng.choice(bench.FIRST_NAMES), rng.choice(bench.SURNAMES)
            company = rng.choice(bench.COMPANIES)
            batch.append(
                Contact(
                    portal_account=account,
                    contact_id=bench._contact_id(rng),
                    name=f"{first} {surname}",
                    email=f"{first}.{surname}.crm{index}@example.com".lower(),
                    crm_account_name=company,
                )
            )
        Contact.objects.bulk_create(batch, batch_size=bench.BATCH)
    return time.perf_counter() - started


def measure(client, url, repeat):
    """As the users bench's, counting the contact rows shown (so an empty page cannot pass for
    a fast one)."""
    bench.get_page(client, url)  # warm-up
    with CaptureQueriesContext(connection) as captured:
        rows = bench.get_page(client, url).content.count(b'<tr id="contact-')
    queries = list(captured.captured_queries)
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        bench.get_page(client, url)
        samples.append((time.perf_counter() - started) * 1000)
    return samples, queries, rows


def cases():
    return [
        ("live contacts, page 1", {}),
        ("deleted contacts", {"show": "deleted"}),
        ("page 500", {"page": 500}),
        ("sort by email, reversed", {"sort": "-email"}),
        ("sort by CRM account", {"sort": "crm"}),
        ("newest first", {"sort": "-created"}),
        ("deleted, newest first", {"show": "deleted", "sort": "-deleted"}),
        ("filter: no portal user", {"portal": "none"}),
        ("filter: portal user enabled", {"portal": "enabled"}),
        ("filter: portal user disabled", {"portal": "disabled"}),
        ("filter: CRM account", {"crm": bench.COMPANIES[0]}),
        ("filter: no user + CRM account", {"portal": "none", "crm": bench.COMPANIES[0]}),
        (f'search "{bench.SEARCH_TERM}"', {"q": bench.SEARCH_TERM}),
    ]


def main():
    args = bench.parse_args()
    logging.disable(logging.INFO)
    bench.require_postgres()
    bench.ensure_database()
    call_command("migrate", verbosity=0)
    admin = bench.ensure_admin()
    sizes = sorted({bench.BASE_USERS, args.users})
    accounts = {}
    for size in sizes:
        account, seconds = bench.seed_account(
            f"bench-{size}", f"Bench Portal of {size:,}", size, admin, args.reseed
        )
        extra = add_crm_only_contacts(account, size)
        accounts[size] = account
        contacts = Contact.objects.filter(portal_account=account).count()
        seeded = "already there" if seconds is None and extra is None else "seeded"
        print(f"bench-{size}: {size:,} users, {contacts:,} contacts ({seeded})")
    bench.vacuum_analyze()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} before")
    client = bench.signed_in_with_a_code(admin)
    results = {}
    for size, account in accounts.items():
        base = reverse("contacts", args=[account.slug])
        for label, params in cases():
            url = base + ("?" + urlencode(params) if params else "")
            results.setdefault(label, {})[size] = (url, *measure(client, url, args.repeat))
    print(f"machine: load average {os.getloadavg()[0]:.2f} after")
    bench.print_table(results, sizes)
    explained = {}
    for label, by_size in results.items():
        for size, (url, samples, queries, _rows) in by_size.items():
            if bench.p95(samples) >= bench.TARGET_MS:
                bench.print_diagnosis(f"{label} at {size:,} users", url, queries, explained)


if __name__ == "__main__":
    bench.override_settings(
        STORAGES={
            **bench.settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
        STATIC_ROOT=None,
    )(main)()
