"""What one click of bench/load.py's console admins costs the web process: the CPU time and
queries of each page the locustfile asks for, in-process, signed in as the load's admins are
(password, then an authenticator code), against the database bench/load.py seeds.

    cd /work/main
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pa_load_ops \\
        .venv/bin/python bench/console_requests.py [--repeat 30] [--profile 25] \\
        [--cache redis://127.0.0.1:6379/12]

Seed the database first (bench/load.py --seed-only). The settings are the production stack's
as bench/load.py starts it (DEBUG off, the manifest static files, the Redis cache when --cache
names one); after every request the database connection is treated as gunicorn's request end
treats it (close_old_connections: closed unless CONN_MAX_AGE keeps it), so connecting is in the
figures as it is in production. Per page it prints the median wall and CPU ms of the web
process, the CPU ms of its PostgreSQL backend (from /proc: the database on this machine; a
backend started for the request counts from its start), the queries of one request, and the
locustfile's mix (its task weights) as CPU ms per click. --queries prints the SQL of one request
of each page. --profile N prints the N functions with the most cumulative and own CPU time over
every timed request (cProfile: its overhead inflates the CPU figures of that run several times).
The CPU figures move less with the machine's other load than the wall times do.
"""

import argparse
import cProfile
import io
import os
import pstats
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per page")
    parser.add_argument("--profile", type=int, default=0, help="print the top N functions")
    parser.add_argument(
        "--cache",
        default=os.environ.get("CACHE_URL", ""),
        help="CACHE_URL, e.g. the Redis db bench/load.py's stack uses (locmem without)",
    )
    parser.add_argument("--queries", action="store_true", help="print each page's queries")
    parser.add_argument("--account-users", type=int, default=100_000, help="bench-N to browse")
    return parser.parse_args()


ARGS = parse_args()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal_admin.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-any-deploy-0123456789")
os.environ["DEBUG"] = "false"
os.environ["SECURE_SSL_REDIRECT"] = "false"
os.environ["SESSION_COOKIE_SECURE"] = "false"
os.environ["CSRF_COOKIE_SECURE"] = "false"
os.environ["ALLOWED_HOSTS"] = "testserver,127.0.0.1,localhost"
if ARGS.cache:
    os.environ["CACHE_URL"] = ARGS.cache
# The manifest storage of DEBUG=false, as production serves it: its static files collected here.
STATIC_ROOT = Path(os.environ.get("TMPDIR", "/tmp")) / "portal_admin_console_requests_static"
os.environ["STATIC_ROOT"] = str(STATIC_ROOT)

import django  # noqa: E402

django.setup()

import logging  # noqa: E402
import re  # noqa: E402

from authenticator import totp  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import close_old_connections, connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django_otp.plugins.otp_totp.models import TOTPDevice  # noqa: E402

from accounts.models import PortalAccount, User, UserKind, UserState  # noqa: E402
from accounts.user_listing import PAGE_SIZE  # noqa: E402
from contacts.models import Contact  # noqa: E402

EMAIL = "console-requests@bench.example"
PASSWORD = "console-requests-bench-password-1"
CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')


def signed_in():
    """A client signed in as the load's admins are: the sign-in page, the password, the code."""
    person = User.objects.filter(email=EMAIL, portal_account__isnull=True).first()
    if person is None:
        person = User.objects.create_staff(
            EMAIL, PASSWORD, name="Console Requests", kind=UserKind.MSSP_ADMIN
        )
    TOTPDevice.objects.filter(user=person).delete()
    key = os.urandom(20).hex()
    TOTPDevice.objects.create(user=person, name="Bench", key=key, confirmed=True)
    client = Client()
    page = client.get("/sign-in/")
    token = CSRF.search(page.content).group(1).decode()
    answer = client.post(
        "/sign-in/",
        {"csrfmiddlewaretoken": token, "username": EMAIL, "password": PASSWORD, "next": "/"},
        follow=True,
    )
    token = CSRF.search(answer.content).group(1).decode()
    done = client.post(
        "/sign-in/code/", {"csrfmiddlewaretoken": token, "code": totp(key)}, follow=True
    )
    if done.request["PATH_INFO"].startswith("/sign-in/"):
        raise SystemExit("could not sign in: check the database (bench/load.py --seed-only)")
    return client


def pages(account):
    """The locustfile's pages, each with its weight in the locustfile's mix of clicks."""
    users_url = f"/accounts/{account.slug}/users/"
    rng = random.Random(1)
    enabled = (
        User.objects.filter(portal_account=account, state=UserState.ENABLED, is_account_admin=False)
        .exclude(contact__deleted_at__isnull=False)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    user_pk = enabled[len(enabled) // 2]
    contact_pk = (
        Contact.objects.filter(portal_account=account, deleted_at__isnull=True, user__isnull=False)
        .order_by("pk")
        .values_list("pk", flat=True)[1000]
    )
    last_page = account.users.filter(state=UserState.ENABLED).count() // PAGE_SIZE
    # locustfile: tab 6 (enabled 3 : disabled 1 : unconfirmed 1), search 4, a later page 3, sort
    # 1, contact 3, user 1, action 1 (a confirm dialog, then a POST not measured here).
    return [
        ("users: enabled tab", users_url, 6 * 3 / 5),
        ("users: disabled tab", users_url + "?tab=disabled", 6 / 5),
        ("users: unconfirmed tab", users_url + "?tab=unconfirmed", 6 / 5),
        ("users: search", users_url + "?q=lockwood", 4),
        ("users: a later page", users_url + f"?page={rng.randint(2, last_page)}", 3),
        ("users: sort by last sign-in", users_url + "?sort=-last_login", 1),
        ("contact page", f"/accounts/{account.slug}/contacts/{contact_pk}/", 3),
        ("user page", f"{users_url}{user_pk}/", 1),
        ("action: confirm dialog", f"{users_url}{user_pk}/send-login-email/", 1),
    ]


_backend_seen = {}


def backend_cpu_ms():
    """CPU time of this connection's PostgreSQL backend since it was last asked (a new backend:
    since it started), from /proc: the database must run on this machine. None without it."""
    if connection.connection is None:
        return None
    pid = connection.connection.info.backend_pid
    try:
        ns = int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    spent = ns - _backend_seen.get(pid, 0)
    _backend_seen[pid] = ns
    return spent / 1e6


def get(client, url, database_cpu=None):
    response = client.get(url)
    spent = backend_cpu_ms()
    if database_cpu is not None and spent is not None:
        database_cpu.append(spent)
    # The end of a request as gunicorn's handler has it: the connection closed unless
    # CONN_MAX_AGE keeps it (the test client alone would keep it open across requests).
    close_old_connections()
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}")
    return response


def main():
    logging.disable(logging.INFO)  # the request log's line per request
    call_command("collectstatic", interactive=False, verbosity=0)
    account = PortalAccount.objects.get(slug=f"bench-{ARGS.account_users}")
    client = signed_in()
    cases = pages(account)
    profiler = cProfile.Profile(time.process_time) if ARGS.profile else None
    load_before = os.getloadavg()[0]
    print(
        f"{'page':<30} {'wall':>7} {'cpu':>7} {'db cpu':>7} {'queries':>7}"
        f"  (median ms of {ARGS.repeat})"
    )
    mix_cpu = mix_db = mix_weight = 0
    for label, url, weight in cases:
        get(client, url)  # warm-up: templates, caches
        with CaptureQueriesContext(connection) as captured:
            client.get(url)
        queries = len(captured.captured_queries)
        if ARGS.queries:
            print(f"  {url}")
            for query in captured.captured_queries:
                print(f"    {float(query['time']) * 1000:6.1f}  {query['sql'][:300]}")
        close_old_connections()
        backend_cpu_ms()  # from here on
        wall, cpu, database_cpu = [], [], []
        for _ in range(ARGS.repeat):
            started, cpu_started = time.perf_counter(), time.process_time()
            if profiler:
                profiler.enable()
            get(client, url, database_cpu)
            if profiler:
                profiler.disable()
            wall.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - cpu_started) * 1000)
        median_cpu = statistics.median(cpu)
        median_db = statistics.median(database_cpu) if database_cpu else float("nan")
        mix_cpu += weight * median_cpu
        mix_db += weight * median_db
        mix_weight += weight
        print(
            f"{label:<30} {statistics.median(wall):>7.1f} {median_cpu:>7.1f} {median_db:>7.1f} "
            f"{queries:>7}"
        )
    print(
        f"the locustfile's mix: {mix_cpu / mix_weight:.1f} ms of web-process CPU and "
        f"{mix_db / mix_weight:.1f} ms of PostgreSQL CPU per click; "
        f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after "
        f"({os.cpu_count()} CPUs)"
    )
    if profiler:
        for order in ("cumulative", "tottime"):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(ARGS.profile)
            print(out.getvalue())


if __name__ == "__main__":
    main()
