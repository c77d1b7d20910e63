"""Load on the production stack: console admins (50 by default) sign in once each and browse the
users page of an account with 100,000 users for 5 minutes, against `python3 run.py production`
(gunicorn, a Celery worker and beat on PostgreSQL and Redis) with an SMTP sink; prints requests,
errors, p50/p95/p99 and throughput per page, and checks every email of the run at the sink.

    flock /tmp/portal-bench.lock .venv/bin/python bench/load.py [--duration 300] [--users 50] \\
        [--spawn-rate 10] [--account-users 100000] [--kill-worker] [--reseed]

--kill-worker: the stack runs without its own worker (run.py production --without-worker) and
this bench runs the worker. Halfway through, one more admin sends a login email to 300 users in
one bulk action; once a tenth of them are at the sink the worker is killed with SIGKILL, mid-
batch, and started again 15 s later, as a process manager would. Every email queued during the
run must reach the sink, and no more than the message in flight twice (README, Reliability).
Everything it starts it stops. See bench/README.md.
"""

import argparse
import collections
import contextlib
import json
import logging
import math
import os
import random
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE_GOAL_MS = 300
ADMIN_PASSWORD = "load-bench-admin-password-1"
# Kept in step with what a console admin types (bench/users_page.py's name lists).
SEARCH_FIRST_NAMES = ["maria", "noah", "emma", "omar", "priya"]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=300, help="seconds of load")
    parser.add_argument("--users", type=int, default=50, help="console admins at once")
    parser.add_argument("--spawn-rate", type=float, default=10, help="admins started a second")
    parser.add_argument("--account-users", type=int, default=100_000, help="the account's size")
    parser.add_argument("--kill-worker", action="store_true", help="SIGKILL the worker halfway")
    parser.add_argument("--reseed", action="store_true", help="seed the account again")
    parser.add_argument("--seed-only", action="store_true", help="seed, then stop")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "LOAD_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/pa_load_ops"
        ),
        help="PostgreSQL database of this bench alone (LOAD_DATABASE_URL)",
    )
    parser.add_argument(
        "--redis",
        default=os.environ.get("LOAD_REDIS_URL", "redis://127.0.0.1:6379"),
        help="Redis server (LOAD_REDIS_URL); the bench empties its two databases",
    )
    parser.add_argument("--port", type=int, default=0, help="the stack's port (a free one)")
    parser.add_argument("--smtp-port", type=int, default=0, help="the sink's port (a free one)")
    parser.add_argument("--broker-db", type=int, default=11, help="Redis db of the broker")
    parser.add_argument("--cache-db", type=int, default=12, help="Redis db of the cache")
    return parser.parse_args()


ARGS = parse_args()
# The bench process seeds through Django (bench/users_page.py, which sets up Django on import).
os.environ["DATABASE_URL"] = ARGS.database_url
os.environ.pop("CELERY_BROKER_URL", None)
sys.path.insert(0, str(ROOT / "bench"))

import users_page  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.db import transaction  # noqa: E402
from django.db.models import Max  # noqa: E402
from django_otp.plugins.otp_totp.models import TOTPDevice  # noqa: E402

from accounts.models import OutboxEmail, User, UserKind, UserState  # noqa: E402
from accounts.user_listing import PAGE_SIZE  # noqa: E402
from contacts.models import Contact  # noqa: E402

# aiosmtpd logs every SMTP line at INFO through Django's logging set-up; the sink needs none.
logging.getLogger("mail.log").setLevel(logging.WARNING)


def say(text):
    print(text, flush=True)


def load():
    return os.getloadavg()[0]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- Seeding -------------------------------------------------------------------------------


def console_admins(count):
    """MSSP admins load-admin-N@bench.example with one password (hashed once: a hash costs a
    second of CPU) and each a confirmed TOTP app whose key the locustfile knows. New devices
    every run, so no code of an earlier run counts as used."""
    started = time.process_time()
    password = make_password(ADMIN_PASSWORD)
    say(
        f"one password hash ({password.split('$')[0]}, what every sign-in checks): "
        f"{(time.process_time() - started) * 1000:.0f} ms of CPU"
    )
    admins = []
    with transaction.atomic():
        for n in range(count):
            email = f"load-admin-{n}@bench.example"
            user = User.objects.filter(email=email, portal_account__isnull=True).first()
            if user is None:
                user = User.objects.create_staff(
                    email, None, name=f"Load Admin {n}", kind=UserKind.MSSP_ADMIN
                )
            user.password = password
            user.save(update_fields=["password"])
            TOTPDevice.objects.filter(user=user).delete()
            key = secrets.token_hex(20)
            TOTPDevice.objects.create(user=user, name="Load bench", key=key, confirmed=True)
            admins.append({"email": email, "password": ADMIN_PASSWORD, "key": key})
    return admins


def what_admins_open(account):
    """Ids the simulated admins open: enabled users (their page, and the actions that email
    them) and live contacts that have a user; a sample drawn the same way on every run."""
    rng = random.Random(account.slug)
    users = User.objects.filter(
        portal_account=account, state=UserState.ENABLED, is_account_admin=False
    ).exclude(contact__deleted_at__isnull=False)
    users = sorted(users.values_list("pk", flat=True))
    contacts = Contact.objects.filter(
        portal_account=account, deleted_at__isnull=True, user__isnull=False
    )
    contacts = sorted(contacts.values_list("pk", flat=True))
    counts = collections.Counter(account.users.values_list("state", flat=True).iterator())
    pages = {state: max(math.ceil(counts[state] / PAGE_SIZE), 1) for state in UserState.values}
    terms = [s.lower() for s in users_page.SURNAMES[::25]] + SEARCH_FIRST_NAMES + ["lockw"]
    return {
        "users": rng.sample(users, min(len(users), 5000)),
        "contacts": rng.sample(contacts, min(len(contacts), 5000)),
        "pages": pages,
        "search_terms": terms,
    }, counts


# --- The SMTP sink -------------------------------------------------------------------------


class SmtpSink:
    """Counts what arrives, per recipient and per Message-ID (a repeat of an email keeps its
    Message-ID). aiosmtpd in a thread of this process, which only waits while locust runs."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.port = ARGS.smtp_port or free_port()
        self.per_recipient = collections.Counter()
        self.per_message_id = collections.Counter()
        self.lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):
        message_id = ""
        for line in envelope.content.split(b"\r\n"):
            if not line:
                break
            if line.lower().startswith(b"message-id:"):
                message_id = line.split(b":", 1)[1].strip().decode()
        with self.lock:
            for recipient in envelope.rcpt_tos:
                self.per_recipient[recipient.lower()] += 1
            self.per_message_id[message_id] += 1
        return "250 Message accepted for delivery"


# --- The stack -----------------------------------------------------------------------------


def flush_redis(url):
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    client.flushdb()
    client.close()


def stack_environment(port, smtp_port, workdir):
    broker = f"{ARGS.redis}/{ARGS.broker_db}"
    return {
        **os.environ,
        "DATABASE_URL": ARGS.database_url,
        "CELERY_BROKER_URL": broker,
        "CACHE_URL": f"{ARGS.redis}/{ARGS.cache_db}",
        "SECRET_KEY": "load-bench-only-secret-key-" + "0123456789abcdef" * 3,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        # Plain HTTP on the loopback, with no TLS proxy in front: no redirect to https, no HSTS,
        # and cookies that a client sends over http.
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_HSTS_SECONDS": "0",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_port),
        "EMAIL_USE_TLS": "false",
        "EMAIL_HOST_USER": "",
        "EMAIL_HOST_PASSWORD": "",
        "PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
        "DEPLOY_CHECKS": "warn",  # plain HTTP on the loopback: a trial, as far as they know
        # An email whose task died with a killed worker waits for the sweep: every 30 s for rows
        # pending over 60 s here, instead of 300 s and 600 s, so the bench need not wait 15 min.
        "OUTBOX_SWEEP_EVERY_SECONDS": "30",
        "OUTBOX_REQUEUE_AFTER_SECONDS": "60",
        "MONITORING_TOKEN": "load-bench-monitoring-token",
        "STATIC_ROOT": str(workdir / "static"),
        "MEDIA_ROOT": str(workdir / "media"),
        "LOG_DIR": str(workdir / "log"),
        "RUN_DIR": str(workdir / "run"),
        "PYTHONUNBUFFERED": "1",
    }


class Stack:
    """`python3 run.py production` and, with --kill-worker, the worker this bench runs itself."""

    def __init__(self, workdir, smtp_port, separate_worker):
        self.workdir = workdir
        self.port = ARGS.port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = stack_environment(self.port, smtp_port, workdir)
        self.separate_worker = separate_worker
        self.process = None
        self.worker = None
        self.worker_starts = 0

    def start(self):
        command = [sys.executable, "run.py", "production", "--bind", f"127.0.0.1:{self.port}"]
        if self.separate_worker:
            command.append("--without-worker")
        self.log = open(self.workdir / "run-production.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
        if self.separate_worker:
            self.start_worker()
        self.wait_until_ready()

    def start_worker(self):
        # The command run.py production runs, with its environment (metrics beside the stack's).
        self.worker_starts += 1
        log = self.workdir / "log" / f"worker-{self.worker_starts}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        env = {**self.env, "PROMETHEUS_MULTIPROC_DIR": str(self.workdir / "worker-metrics")}
        Path(env["PROMETHEUS_MULTIPROC_DIR"]).mkdir(exist_ok=True)
        with open(log, "ab") as out:
            self.worker = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "portal_admin", "worker", "--loglevel=INFO"],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                process_group=0,
            )

    def kill_worker(self):
        """SIGKILL to the worker and its pool processes at once, as the OOM killer or a lost
        machine would: no warm shutdown, no task handed back."""
        os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait()

    def wait_until_ready(self, seconds=180):
        deadline = time.monotonic() + seconds
        request = urllib.request.Request(
            self.base + "/health/ready/",
            headers={"Authorization": "Bearer " + self.env["MONITORING_TOKEN"]},
        )
        last = ""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"run.py production exited: see {self.log.name}")
            try:
                with urllib.request.urlopen(request, timeout=5) as answer:
                    if answer.status == 200:
                        return
            except OSError as error:
                last = str(error)
            time.sleep(1)
        raise SystemExit(f"the stack was not ready in {seconds} s ({last}); see {self.log.name}")

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=100)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.worker is not None and self.worker.poll() is None:
            self.worker.send_signal(signal.SIGTERM)
            try:
                self.worker.wait(timeout=70)
            except subprocess.TimeoutExpired:
                os.killpg(self.worker.pid, signal.SIGKILL)
                self.worker.wait()


# --- Figures -------------------------------------------------------------------------------


def percentile(ordered, fraction):
    """Nearest rank, as users_page.p95 takes it."""
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)] if ordered else float("nan")


def read_samples(path):
    rows = []
    for line in path.read_text().splitlines():
        moment, method, name, ms, ok = line.split("\t")
        rows.append((float(moment), method, name, float(ms), ok == "1"))
    return rows


PAGES = "ALL pages (GET after sign-in)"
STEADY = "ALL pages, all signed in"


def table(samples, seconds):
    """Per request name and per group: count, errors, p50/p95/p99/max (ms), requests a second.
    STEADY: the pages asked for once the last admin was signed in (their sign-ins, a password
    hash of about a second of CPU each, queue every request of the first minute)."""
    signed_in = [moment for moment, _, name, _, ok in samples if name == "sign-in: code" and ok]
    all_in = max(signed_in) if signed_in else float("inf")
    end = max(moment for moment, *_ in samples)
    groups = collections.defaultdict(list)
    for moment, method, name, ms, ok in samples:
        groups[name].append((ms, ok))
        kind = "sign-in" if name.startswith("sign-in") else "actions" if method == "POST" else ""
        groups[f"ALL {kind}" if kind else PAGES].append((ms, ok))
        if not kind and moment - ms / 1000 >= all_in:
            groups[STEADY].append((ms, ok))
        groups["ALL requests"].append((ms, ok))
    columns = ("count", "errors", "p50", "p95", "p99", "max", "req/s")
    header = f"{'request':<34}" + "".join(f" {column:>7}" for column in columns)
    lines = [header, "-" * len(header)]
    for name in sorted(groups, key=lambda n: (n.startswith("ALL"), n)):
        times = sorted(ms for ms, _ in groups[name])
        errors = sum(1 for _, ok in groups[name] if not ok)
        span = end - all_in if name == STEADY else seconds
        lines.append(
            f"{name:<34} {len(times):>7} {errors:>7} {percentile(times, 0.5):>7.0f} "
            f"{percentile(times, 0.95):>7.0f} {percentile(times, 0.99):>7.0f} {times[-1]:>7.0f} "
            f"{len(times) / max(span, 1):>7.1f}"
        )
    if signed_in:
        first = min(moment for moment, *_ in samples)
        lines.append(f"(the last admin was signed in {all_in - first:.0f} s after the first asked)")
    return "\n".join(lines), groups


def per_minute(samples, loads):
    """Pages per minute of the run beside the machine's load average then: on a shared machine
    another agent's test run can start in the middle, and the minutes say which times it
    made."""
    first = min(moment for moment, *_ in samples)
    minutes = collections.defaultdict(list)
    for moment, method, name, ms, _ok in samples:
        if method == "GET" and not name.startswith("sign-in"):
            minutes[int((moment - first) // 60)].append(ms)
    lines = [f"{'pages, minute of the run':<34} {'count':>7} {'p50':>7} {'p95':>7} {'load':>7}"]
    for minute in sorted(minutes):
        times = sorted(minutes[minute])
        then = [a for moment, a in loads if minute <= (moment - first) / 60 < minute + 1]
        average = f"{sum(then) / len(then):7.2f}" if then else f"{'-':>7}"
        lines.append(
            f"{f'{minute}-{minute + 1}':<34} {len(times):>7} {percentile(times, 0.5):>7.0f} "
            f"{percentile(times, 0.95):>7.0f} {average}"
        )
    return "\n".join(lines)


def server_times(web_log):
    """Django's own time per view (its request log's duration_ms, JSON lines): the client's
    time less this is the wait for a free gunicorn worker and the network."""
    per_view = collections.defaultdict(list)
    if web_log.exists():
        for line in web_log.read_text(errors="replace").splitlines():
            if '"duration_ms"' not in line:
                continue
            with contextlib.suppress(ValueError, KeyError):
                record = json.loads(line)
                per_view[record.get("view") or "?"].append(float(record["duration_ms"]))
    lines = [f"{'in Django, per view':<34} {'count':>7} {'p50':>7} {'p95':>7} {'p99':>7}"]
    for view, times in sorted(per_view.items(), key=lambda item: -len(item[1])):
        times.sort()
        lines.append(
            f"{view:<34} {len(times):>7} {percentile(times, 0.5):>7.0f} "
            f"{percentile(times, 0.95):>7.0f} {percentile(times, 0.99):>7.0f}"
        )
    return "\n".join(lines)


def emails_of_run(first_pk, sink, wait_seconds, repeats_allowed):
    """Waits until no email queued during the run is pending, then compares each recipient's
    emails marked sent with what the sink received: none may be missing, and no more than
    `repeats_allowed` may arrive twice (the README's promise: a killed worker's message in
    flight is sent again). Returns (ok, lines)."""
    run = OutboxEmail.objects.filter(pk__gt=first_pk)
    deadline = time.monotonic() + wait_seconds
    while run.filter(status=OutboxEmail.Status.PENDING).exists() and time.monotonic() < deadline:
        time.sleep(2)
    time.sleep(2)  # a message accepted just now is counted by the sink thread
    statuses = collections.Counter(run.values_list("status", flat=True))
    sent = collections.Counter(
        email.lower()
        for email in run.filter(status=OutboxEmail.Status.SENT).values_list("to_email", flat=True)
    )
    with sink.lock:
        received = collections.Counter(sink.per_recipient)
        repeats = sum(n - 1 for n in sink.per_message_id.values() if n > 1)
    missing = sum((sent - received).values())
    extra = sum((received - sent).values())
    twice = sum(1 for r in received if received[r] > sent.get(r, 0))
    lines = [
        f"emails queued during the run: {sum(statuses.values())} "
        f"({', '.join(f'{k} {v}' for k, v in sorted(statuses.items())) or 'none'})",
        f"at the SMTP sink: {sum(received.values())} messages to {len(received)} recipients; "
        f"per recipient against the rows marked sent: {missing} missing, {extra} extra "
        f"({twice} recipients got more), {repeats} repeats of one Message-ID",
    ]
    lines.append(
        f"promise: none missing, at most {repeats_allowed} sent twice "
        f"({IN_FLIGHT_PER_KILL} in flight per kill of the worker)"
    )
    pending = statuses.get(OutboxEmail.Status.PENDING, 0)
    return pending == 0 and missing == 0 and extra <= repeats_allowed, lines


# --- The burst the worker is killed in ------------------------------------------------------

BURST_EMAILS = 300
# README, Reliability: a worker SIGKILLed mid-batch leaves the message in flight in doubt, and
# the doubt falls on a second copy.
IN_FLIGHT_PER_KILL = 1
RESTART_DELAY_SECONDS = 15
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def burst_of_login_emails(stack, slug, admin, user_ids):
    """One more admin sends a login email to BURST_EMAILS users in one bulk action, through
    the console as a person does, so that the worker is in the middle of a batch when it is
    killed (the locust admins' occasional email is rarely in flight at that moment). Returns
    the bulk action's HTTP status."""
    import requests
    from authenticator import totp

    session = requests.Session()

    def post(url, fields, to=None):
        """A form as a browser posts it: the CSRF token of the page that showed it."""
        page = session.get(stack.base + url, timeout=30)
        data = {"csrfmiddlewaretoken": CSRF.search(page.text).group(1), **fields}
        target = stack.base + to if to else page.url
        headers = {"Referer": page.url}
        return session.post(target, data=data, headers=headers, timeout=120, allow_redirects=False)

    post("/sign-in/", {"username": admin["email"], "password": admin["password"]})
    post("/sign-in/code/", {"code": totp(admin["key"])})
    users_url = f"/accounts/{slug}/users/"
    fields = {"action": "send-login-email", "tab": "enabled", "confirmed": "1", "ids": user_ids}
    answer = post(users_url, fields, to=f"{users_url}bulk/")
    return answer.status_code


def wait_for_sink(sink, at_least, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with sink.lock:
            if sum(sink.per_recipient.values()) >= at_least:
                return True
        time.sleep(0.05)
    return False


# --- The run -------------------------------------------------------------------------------


# --- CPU of the run ---------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _kind(cmdline):
    if "gunicorn" in cmdline:
        return "web (gunicorn)"
    if "celery" in cmdline:
        return "beat" if " beat" in cmdline else "worker (celery)"
    return "run.py"


def tree_cpu(roots):
    """pid -> (kind, CPU seconds so far) of these processes and all their descendants (the
    stack: run.py, gunicorn and its workers, the Celery worker and its pool, beat; with
    --kill-worker the bench's own worker too)."""
    processes = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        seconds = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        processes[int(entry.name)] = (int(fields[1]), _kind(cmdline), seconds)
    found, wanted = {}, set(roots)
    while wanted:
        found.update({pid: processes[pid][1:] for pid in wanted if pid in processes})
        wanted = {pid for pid, (ppid, *_) in processes.items() if ppid in wanted} - found.keys()
    return found


def machine_busy_seconds():
    """CPU seconds the whole machine spent busy (not idle, not waiting on the disk) so far."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / CLOCK_TICKS


class RunCpu:
    """What the run cost in CPU: the stack's processes by kind, locust, and the whole machine
    (PostgreSQL and whatever else runs on it: other work makes that figure, not the others,
    move). A process that exited during the run (a recycled gunicorn worker, the killed
    worker) is left out."""

    def __init__(self, stack):
        self.stack = stack

    def roots(self):
        roots = {self.stack.process.pid}
        if self.stack.worker is not None:
            roots.add(self.stack.worker.pid)
        return roots

    def start(self):
        self.processes = tree_cpu(self.roots())
        self.children = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.machine = machine_busy_seconds()

    def stop(self):
        per_kind = collections.Counter()
        for pid, (kind, seconds) in tree_cpu(self.roots()).items():
            per_kind[kind] += seconds - self.processes.get(pid, (kind, 0))[1]
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        per_kind["locust"] = (
            children.ru_utime + children.ru_stime - self.children.ru_utime - self.children.ru_stime
        )
        per_kind["the whole machine"] = machine_busy_seconds() - self.machine
        self.per_kind = per_kind

    def lines(self, requests):
        order = ["web (gunicorn)", "worker (celery)", "beat", "run.py", "locust"]
        kinds = [kind for kind in order if kind in self.per_kind] + ["the whole machine"]
        return [
            f"CPU of the run per request ({requests} requests), ms: "
            + ", ".join(f"{kind} {self.per_kind[kind] / requests * 1000:.1f}" for kind in kinds),
            "(the whole machine: the stack, locust, PostgreSQL and anything else running on it)",
        ]


def run_locust(stack, data_path, samples_path, workdir, on_halfway):
    env = {**os.environ, "LOAD_DATA": str(data_path), "LOAD_SAMPLES": str(samples_path)}
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(ROOT / "bench" / "locustfile.py"),
        "--headless",
        "--users",
        str(ARGS.users),
        "--spawn-rate",
        str(ARGS.spawn_rate),
        "--run-time",
        f"{ARGS.duration}s",
        "--host",
        stack.base,
        "--only-summary",
        "--stop-timeout",
        "10",
        "--loglevel",
        "WARNING",
    ]
    loads = []
    stack.cpu = RunCpu(stack)
    stack.cpu.start()
    with open(workdir / "locust.log", "ab") as out:
        locust = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
        started = time.monotonic()
        halfway_done = False
        next_sample = started
        while locust.poll() is None:
            time.sleep(1)
            if time.monotonic() >= next_sample:
                loads.append((time.time(), load()))
                next_sample += 5
            if not halfway_done and time.monotonic() - started >= ARGS.duration / 2:
                halfway_done = True
                on_halfway()
    stack.cpu.stop()
    return locust.returncode, time.monotonic() - started, loads


def main():
    workdir = Path(tempfile.mkdtemp(prefix="portal-load-"))
    doing = "seeding only" if ARGS.seed_only else f"{ARGS.users} console admins, {ARGS.duration} s"
    say(f"bench/load.py: {doing}; files in {workdir}")
    say(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    users_page.require_postgres()
    users_page.ensure_database()
    users_page.call_command("migrate", verbosity=0)
    seed_admin = users_page.ensure_admin()
    # Named as bench/users_page.py names its accounts of that size.
    size = ARGS.account_users
    account, seconds = users_page.seed_account(
        f"bench-{size}", f"Bench Portal of {size:,}", size, seed_admin, ARGS.reseed
    )
    small = (users_page.SMALL_SLUG, users_page.SMALL_NAME, users_page.SMALL_USERS)
    users_page.seed_account(*small, seed_admin, ARGS.reseed)
    users_page.vacuum_analyze()
    say(
        f"seed: {'skipped (already there)' if seconds is None else f'{seconds:.0f} s'}, "
        f"{ARGS.account_users} users in {account.slug}"
    )
    # The seed's pending invitations (a users page shows some) would be sent by the stack's
    # sweep during the run: the worker's work and the sink's count would not be the run's.
    OutboxEmail.objects.filter(status=OutboxEmail.Status.PENDING).update(
        status=OutboxEmail.Status.FAILED
    )
    if ARGS.seed_only:
        return 0
    data, counts = what_admins_open(account)
    admins = console_admins(ARGS.users + 1)
    # The last admin sends the burst (bench/load.py --kill-worker): a TOTP code is good once,
    # so it must not be one that a locust admin may sign in with at that moment.
    burst_admin = admins.pop()
    burst_users = random.Random(1).sample(data["users"], BURST_EMAILS)
    data.update(slug=account.slug, admins=admins)
    say(f"users per state: {dict(counts)}; {ARGS.users} MSSP admins with a TOTP app each")
    data_path = workdir / "load-data.json"
    data_path.write_text(json.dumps(data))
    samples_path = workdir / "samples.tsv"

    for db in (ARGS.broker_db, ARGS.cache_db):
        flush_redis(f"{ARGS.redis}/{db}")
    sink = SmtpSink()
    sink.controller.start()
    stack = Stack(workdir, sink.port, separate_worker=ARGS.kill_worker)
    first_pk = OutboxEmail.objects.aggregate(last=Max("pk"))["last"] or 0
    killed, burst_status = [], []

    def halfway():
        if not ARGS.kill_worker:
            return
        run = OutboxEmail.objects.filter(pk__gt=first_pk)
        with sink.lock:
            before = sum(sink.per_recipient.values())
        burst = threading.Thread(
            target=lambda: burst_status.append(
                burst_of_login_emails(stack, account.slug, burst_admin, burst_users)
            )
        )
        burst.start()
        # Killed once a tenth of the burst is at the sink: the worker is mid-batch.
        in_flight = wait_for_sink(sink, before + BURST_EMAILS // 10)
        waiting = run.filter(status=OutboxEmail.Status.PENDING).count()
        stack.kill_worker()
        with sink.lock:
            at_kill = sum(sink.per_recipient.values()) - before
        say(
            f"  {time.strftime('%H:%M:%S')} a bulk login email to {BURST_EMAILS} users; "
            f"{at_kill} of the run's emails had arrived since"
            + ("" if in_flight else " (the burst did not start sending within 60 s)")
        )
        last_pk = run.aggregate(last=Max("pk"))["last"] or first_pk
        say(
            f"  {time.strftime('%H:%M:%S')} SIGKILL to the worker and its pool; {waiting} "
            "emails of the run were pending"
        )
        killed.append(time.monotonic())
        burst.join()
        # A process manager's restart delay, long enough for the web process to queue more
        # email (the locust admins go on) to a broker whose worker is gone.
        time.sleep(RESTART_DELAY_SECONDS)
        stack.start_worker()
        queued = OutboxEmail.objects.filter(pk__gt=last_pk).count()
        say(
            f"  {time.strftime('%H:%M:%S')} worker started again; {queued} emails were queued "
            "while it was down"
        )

    try:
        say("starting python3 run.py production" + (" --without-worker" * ARGS.kill_worker))
        stack.start()
        say(f"stack ready on {stack.base}; load average {load():.2f}; locust starts")
        code, seconds, loads = run_locust(stack, data_path, samples_path, workdir, halfway)
        say(f"locust exited with {code} after {seconds:.0f} s")
        emails_ok, email_lines = emails_of_run(
            first_pk, sink, 240 if ARGS.kill_worker else 120, IN_FLIGHT_PER_KILL * len(killed)
        )
    finally:
        say("stopping the stack")
        stack.stop()
        sink.controller.stop()
        for db in (ARGS.broker_db, ARGS.cache_db):
            flush_redis(f"{ARGS.redis}/{db}")

    samples = read_samples(samples_path) if samples_path.exists() else []
    if not samples:
        raise SystemExit(f"no request was made: see {workdir / 'locust.log'}")
    text, groups = table(samples, seconds)
    say("")
    say(text)
    say("(times in ms, at the client: locust shares the machine's cores with the stack)")
    say("")
    say(per_minute(samples, loads))
    say("")
    say(server_times(workdir / "log" / "web.log"))
    say("")
    if getattr(stack, "cpu", None) is not None and hasattr(stack.cpu, "per_kind"):
        for line in stack.cpu.lines(len(samples)):
            say(line)
        say("")
    for line in email_lines:
        say(line)
    errors = sum(1 for *_, ok in samples if not ok)
    page_p95 = percentile(sorted(ms for ms, _ in groups[PAGES]), 0.95)
    steady_p95 = percentile(sorted(ms for ms, _ in groups[STEADY]), 0.95)
    averages = [average for _, average in loads]
    say(
        f"load average during the run: min {min(averages):.2f}, mean "
        f"{sum(averages) / len(averages):.2f}, max {max(averages):.2f}; after: "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)"
    )
    verdicts = [
        (f"0 errors (got {errors})", errors == 0),
        (f"pages p95 under {PAGE_GOAL_MS} ms (got {page_p95:.0f} ms)", page_p95 < PAGE_GOAL_MS),
        (
            f"pages p95 under {PAGE_GOAL_MS} ms once all are signed in (got {steady_p95:.0f} ms)",
            steady_p95 < PAGE_GOAL_MS,
        ),
        ("every email of the run at the sink, repeats within the promise", emails_ok),
    ]
    if ARGS.kill_worker:
        verdicts.append(("the worker was killed and started again", bool(killed)))
        verdicts.append(
            (f"the burst's bulk action answered (got {burst_status})", burst_status == [302])
        )
    for label, ok in verdicts:
        say(f"{'PASS' if ok else 'FAIL'}  {label}")
    shutil.rmtree(workdir / "run", ignore_errors=True)
    say(f"logs: {workdir}")
    return 0 if all(ok for _, ok in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
