"""What webhooks add to the changes that write them, on PostgreSQL: an import batch of 5,000
invitations (bulk_invites.invite_many, the CSV import's step) and 500 single disables, each with
0, 1 and 3 active endpoints subscribed. Only the writing is measured: the hand-off to the worker
is counted, not sent (no broker, no HTTP).

    cd /work/main && DATABASE_URL=postgres://postgres@127.0.0.1:5432/pa_webhooks \\
        .venv/bin/python bench/webhooks.py [--batch 5000] [--disables 500]

Prints the process's CPU seconds (what noise barely changes) and wall seconds per case, and the
deliveries written; the load average before and after."""

import argparse
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

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402

from accounts import bulk_invites, lifecycle  # noqa: E402
from accounts.models import PortalAccount, Role, User, UserKind, UserType  # noqa: E402
from bench.users_page import ensure_database, require_postgres  # noqa: E402
from contacts.models import Contact  # noqa: E402
from webhooks import tasks  # noqa: E402
from webhooks.models import Delivery, Endpoint, EventType  # noqa: E402

RUN = int(time.time())
woken = []
tasks.wake = lambda: woken.append(1)  # counted, not sent


def fresh_account(n, size):
    slug = f"bench-webhooks-{RUN}-{n}"  # a fresh account each run: the database is disposable
    account = PortalAccount.objects.create(
        name=slug, slug=slug, partner_licenses=size * 2, customer_licenses=1, employee_licenses=1
    )
    role = Role.objects.create(portal_account=account, name="Partner", user_type=UserType.PARTNER)
    contacts = Contact.objects.bulk_create(
        Contact(portal_account=account, name=f"P {i}", email=f"p{i}@{slug}.example")
        for i in range(size)
    )
    return account, role, contacts


def measure(action):
    cpu, wall = time.process_time(), time.perf_counter()
    action()
    return time.process_time() - cpu, time.perf_counter() - wall


def row(case, cpu, wall, written):
    print(f"{case:<34}{cpu:8.2f}{wall:8.2f}{written:12}")


def run_case(n, endpoints, args, staff):
    account, role, contacts = fresh_account(n, args.batch)
    Endpoint.objects.bulk_create(
        Endpoint(portal_account=account, url=f"https://crm{i}.example/", events=EventType.values)
        for i in range(endpoints)
    )

    def invite():
        with transaction.atomic():
            bulk_invites.invite_many(
                account, [(c, role) for c in contacts], by=staff, send_email=False
            )

    cpu, wall = measure(invite)
    written = Delivery.objects.filter(portal_account=account).count()
    row(f"invite_many {args.batch}, {endpoints} endpoints", cpu, wall, written)
    users = list(User.objects.filter(portal_account=account)[: args.disables])

    def disable():
        for user in users:
            lifecycle.disable(user, by=staff)

    cpu, wall = measure(disable)
    more = Delivery.objects.filter(portal_account=account).count() - written
    row(f"{args.disables} disables, {endpoints} endpoints", cpu, wall, more)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--disables", type=int, default=500)
    args = parser.parse_args()
    ensure_database()
    require_postgres()
    call_command("migrate", verbosity=0)
    staff, _ = User.objects.get_or_create(
        email="bench-webhooks@mssp.example", defaults={"kind": UserKind.MSSP_ADMIN, "name": "B"}
    )
    print(f"load average before: {os.getloadavg()}")
    print(f"{'case':<34}{'CPU s':>8}{'wall s':>8}{'deliveries':>12}")
    # 0 again last: the first case also pays for warming up (imports, plans, caches).
    for n, endpoints in enumerate((0, 1, 3, 0)):
        run_case(n, endpoints, args, staff)
    print(f"load average after: {os.getloadavg()}; worker hand-offs counted: {len(woken)}")


if __name__ == "__main__":
    main()
