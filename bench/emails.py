"""Outbox sending with a real Celery worker: emails per second, the worker's peak memory and the
SMTP sessions it opens, with one session reused for consecutive messages against the baseline of
one session per message, then the per-portal-account pace held under a limit.

    cd /work/main && .venv/bin/python bench/emails.py [--emails 5000] [--paced-emails 900] \\
        [--paced-rate 600] [--pool solo|prefork]

Everything is real except the mail server: PostgreSQL (database portal_admin_bench_mail, created
if missing, migrated), Redis db 12 as the broker and as the pace's shared cache (emptied before
and after each run), one `celery worker` subprocess per run (solo pool unless --pool=prefork),
and an aiosmtpd server in this process that counts sessions and messages. It stops by itself in
under 6 minutes.
"""

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from django.core.mail.backends.smtp import EmailBackend

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal_admin_bench_mail"
REDIS_URL = "redis://127.0.0.1:6379/12"
SECRET_KEY = "bench-only-secret-key-not-for-any-deploy-0123456789"
# The pace "off": far more than a worker can send in a minute.
NO_LIMIT = 10_000_000
# Each run gives up after this long, and all of them once TOTAL_SECONDS are over: with the last
# worker's shutdown (at most 15 s) the bench ends within 6 minutes.
RUN_TIMEOUT = {"reuse": 100, "baseline": 110, "paced": 120}
TOTAL_SECONDS = 330
WORKER_READY_TIMEOUT = 30
SLUG, OTHER_SLUG = "bench-mail", "bench-mail-other"


class SessionPerMessageBackend(EmailBackend):
    """The baseline, as sending was before the outbox kept its session open: every message
    connects, greets (EHLO), sends and quits. The worker loads it through EMAIL_BACKEND."""

    def send_messages(self, email_messages):
        try:
            return super().send_messages(email_messages)
        finally:
            self.close()


if __name__ == "__main__":
    # The bench runs like production (DEBUG off), against its own database and Redis db, with a
    # throwaway key: none of these may come from the real deploy.
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DATABASE_URL", DATABASE_URL)
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal_admin.settings"
    os.environ["CELERY_BROKER_URL"] = REDIS_URL
    os.environ["CACHE_URL"] = REDIS_URL
    os.environ["SECRET_KEY"] = SECRET_KEY
    os.environ["DEBUG"] = "false"
    os.environ["SECURE_SSL_REDIRECT"] = "false"
    os.environ["LOG_LEVEL"] = "WARNING"

    import django

    django.setup()

import redis  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from accounts.models import (  # noqa: E402
    EmailKind,
    LoginToken,
    OutboxEmail,
    PortalAccount,
    User,
    UserKind,
    UserState,
    UserType,
)
from mail import outbox  # noqa: E402
from mail.send_pace import windows  # noqa: E402
from portal_admin.celery import app as celery_app  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emails", type=int, default=5000, help="emails in the unpaced runs")
    parser.add_argument(
        "--paced-emails", type=int, default=900, help="emails in the paced run (90 s at 600/min)"
    )
    parser.add_argument("--paced-rate", type=int, default=600, help="pace limit, emails a minute")
    parser.add_argument(
        "--pool",
        choices=["solo", "prefork"],
        default="solo",
        help="the worker's pool: solo (one process) or prefork with concurrency 2",
    )
    return parser.parse_args()


# --- Set-up --------------------------------------------------------------------------------


def ensure_users(slug, count):
    """`count` enabled portal users in one portal account (employees: no CRM contact needed)."""
    account, _ = PortalAccount.objects.get_or_create(
        slug=slug, defaults={"name": slug.replace("-", " ").title(), "employee_licenses": count}
    )
    have = User.objects.filter(portal_account=account).count()
    if have < count:
        User.objects.bulk_create(
            User(
                kind=UserKind.PORTAL,
                portal_account=account,
                user_type=UserType.EMPLOYEE,
                state=UserState.ENABLED,
                name=f"Bench User {n}",
                email=f"user{n}@{slug}.example",
                # Starts with "!": an unusable password, without hashing thousands of them.
                password="!bench-user-no-password",
            )
            for n in range(have, count)
        )
    return account


def clear_mail(accounts):
    """Each run starts from users with no email and no token: the last run's are deleted."""
    LoginToken.objects.filter(user__portal_account__in=accounts).delete()
    OutboxEmail.objects.filter(portal_account__in=accounts).delete()


# --- The mail server -------------------------------------------------------------------------


class Sink:
    """Counts SMTP sessions, and each message with the time it arrived and its recipient."""

    def __init__(self):
        self.sessions = 0
        self.received = []

    async def handle_DATA(self, server, session, envelope):
        self.received.append((time.time(), envelope.rcpt_tos[0]))
        return "250 Message accepted for delivery"


class CountingSMTP(SMTP):
    # Seconds before each reply, standing in for a network round trip (0: loopback).
    reply_delay = 0

    def connection_made(self, transport):
        self.event_handler.sessions += 1
        super().connection_made(transport)

    async def push(self, status):
        if self.reply_delay:
            await asyncio.sleep(self.reply_delay)
        await super().push(status)


class SinkController(Controller):
    def __init__(self, *args, reply_delay=0, **kwargs):
        super().__init__(*args, **kwargs)
        self.reply_delay = reply_delay

    def factory(self):
        smtp = CountingSMTP(self.handler, **self.SMTP_kwargs)
        smtp.reply_delay = self.reply_delay
        return smtp


def free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- The worker ------------------------------------------------------------------------------


class Worker:
    """`celery worker`, its output in a file: --pool=solo is one process sending one email at a
    time; prefork runs two child processes."""

    def __init__(self, log_path, *, pool, email_port, email_backend, rate):
        self.log_path = log_path
        self.pool = pool
        self.hostname = f"bench-mail-{uuid.uuid4().hex[:8]}@bench"
        self.env = {
            **os.environ,
            "DATABASE_URL": os.environ["DATABASE_URL"],
            "CELERY_BROKER_URL": REDIS_URL,
            # The pace's counters, shared as they would be between machines.
            "CACHE_URL": REDIS_URL,
            "SECRET_KEY": SECRET_KEY,
            "DEBUG": "false",
            "SECURE_SSL_REDIRECT": "false",
            "EMAIL_BACKEND": email_backend,
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(email_port),
            "EMAIL_USE_TLS": "false",
            "EMAIL_HOST_USER": "",
            "EMAIL_HOST_PASSWORD": "",
            "EMAIL_TIMEOUT": "10",
            "OUTBOX_RATE_PER_ACCOUNT_PER_MINUTE": str(rate),
            # One log line per task would cost the worker more than some of what is measured.
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        self.process = None

    def start(self, budget):
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal_admin",
            "worker",
            f"--pool={self.pool}",
            f"--concurrency={1 if self.pool == 'solo' else 2}",
            "--loglevel=WARNING",
            "--hostname",
            self.hostname,
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
        ]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + min(WORKER_READY_TIMEOUT, max(budget.left(), 1))
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"The worker exited at start:\n{self.output()}")
            if celery_app.control.ping(destination=[self.hostname], timeout=0.5):
                return self
        raise RuntimeError(f"The worker was not ready in {WORKER_READY_TIMEOUT}s:\n{self.output()}")

    def peak_memory_mib(self):
        """VmHWM (peak resident set) of the worker and any children, in MiB."""
        total = 0
        for pid in [self.process.pid, *_children(self.process.pid)]:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        return total / 1024

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        # SIGTERM is Celery's warm shutdown: the task at hand finishes, unacked ones go back.
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def output(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _children(pid):
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found + [grandchild for child in found for grandchild in _children(child)]


# --- One run ---------------------------------------------------------------------------------


def flush_redis():
    """Redis db 12 is the bench's own: no task or pace counter of an earlier run survives."""
    redis.Redis.from_url(REDIS_URL).flushdb()


def queue_login_links(users):
    """One transaction, like a bulk action: on commit every row is handed to Celery."""
    with transaction.atomic():
        for user in users:
            outbox.queue_email(user, EmailKind.LOGIN_LINK)


def wait_for(sink, count, deadline, worker):
    while len(sink.received) < count and time.monotonic() < deadline:
        if worker.process.poll() is not None:
            raise RuntimeError(f"The worker died:\n{worker.output()}")
        time.sleep(0.05)
    return len(sink.received) >= count


def run(name, *, users, pool, email_backend, rate, log_dir, budget, probe_user=None):
    """Start a worker, queue a login link for each user (and, after them, one for `probe_user`
    of another portal account), wait for the sink to receive them all, then stop."""
    account_id = users[0].portal_account_id
    accounts = [account_id] + ([probe_user.portal_account_id] if probe_user else [])
    flush_redis()
    clear_mail(accounts)
    sink = Sink()
    port = free_port()
    controller = SinkController(sink, hostname="127.0.0.1", port=port, server_hostname="sink")
    worker = Worker(
        log_dir / f"worker-{name}.log",
        pool=pool,
        email_port=port,
        email_backend=email_backend,
        rate=rate,
    )
    controller.start()
    # Controller.start() connects once itself, to check that the server answers.
    sink.sessions = 0
    try:
        worker.start(budget)
        started = time.time()
        queue_login_links(users)
        committed = time.time()
        probe = None
        if probe_user is not None:
            probe = (probe_user.email, time.time())
            queue_login_links([probe_user])
        expected = len(users) + (probe is not None)
        complete = wait_for(sink, expected, budget.deadline(name), worker)
        memory = worker.peak_memory_mib()
    finally:
        worker.stop()
        controller.stop()
        flush_redis()
    rows = OutboxEmail.objects.filter(portal_account_id=account_id)
    received = [at for at, to in sink.received if probe is None or to != probe[0]]
    return {
        "name": name,
        "rate": rate,
        "queued": len(users),
        "received": received,
        "complete": complete,
        "started": started,
        "committed": committed,
        "sessions": sink.sessions,
        "memory": memory,
        "sent_rows": rows.filter(status=OutboxEmail.Status.SENT).count(),
        # A failure writes last_error and counts an attempt; waiting for a turn does neither.
        "failed_attempts": sum(
            attempts - 1 if status == "sent" else attempts
            for attempts, status in rows.exclude(attempts=1, status="sent").values_list(
                "attempts", "status"
            )
        ),
        "waited": rows.filter(next_attempt_at__isnull=False, attempts=1, last_error="").count(),
        "probe_latency": next((at - probe[1] for at, to in sink.received if to == probe[0]), None)
        if probe
        else None,
    }


class Budget:
    """The whole bench stops within TOTAL_SECONDS: each wait gets what is left, at most its
    own limit."""

    def __init__(self):
        self.end = time.monotonic() + TOTAL_SECONDS

    def left(self):
        return self.end - time.monotonic()

    def deadline(self, name):
        return time.monotonic() + max(0, min(RUN_TIMEOUT[name], self.left()))


def session_cost(messages, reply_delay_ms):
    """SMTP alone, from this process, no worker and no database: the seconds a message takes on
    one reused session and on a session of its own. Returns (reused, own, sessions opened)."""
    from django.core.mail import EmailMessage

    timings, sessions = [], []
    for backend_class in (EmailBackend, SessionPerMessageBackend):
        sink = Sink()
        port = free_port()
        controller = SinkController(
            sink,
            hostname="127.0.0.1",
            port=port,
            server_hostname="sink",
            reply_delay=reply_delay_ms / 1000,
        )
        controller.start()
        sink.sessions = 0
        try:
            backend = backend_class(host="127.0.0.1", port=port, use_tls=False, timeout=10)
            backend.open()
            started = time.perf_counter()
            for n in range(messages):
                message = EmailMessage(
                    "Your sign-in link", "x" * 2000, "bench@example.com", [f"u{n}@example.com"]
                )
                backend.send_messages([message])
            timings.append((time.perf_counter() - started) / messages)
            backend.close()
        finally:
            controller.stop()
        sessions.append(sink.sessions)
    return timings[0], timings[1], sessions


def describe_session_cost(messages, delays_ms):
    print("\nSMTP sessions alone (this process to the sink; no worker, no database):")
    for delay in delays_ms:
        reused, own, (reused_sessions, own_sessions) = session_cost(messages, delay)
        where = "loopback" if not delay else f"{delay} ms before each server reply"
        print(
            f"  {where}: {reused * 1000:.2f} ms a message on one session ({reused_sessions} "
            f"opened) vs {own * 1000:.2f} ms with a session each ({own_sessions} opened): "
            f"{own / reused:.2f}x"
        )


# --- Report ----------------------------------------------------------------------------------


def per_second(result):
    received = result["received"]
    if not received:
        return 0.0, 0.0, 0.0
    total = max(received) - result["started"]
    sending = max(received) - min(received)
    return total, len(received) / total, len(received) / sending if sending else 0.0


def describe(result):
    total, rate, send_rate = per_second(result)
    print(
        f"  delivered {len(result['received'])} of {result['queued']}"
        f"{'' if result['complete'] else ' (TIMED OUT)'}; rows sent {result['sent_rows']}; "
        f"failed attempts {result['failed_attempts']}"
    )
    print(
        f"  queue + commit + publish: {result['committed'] - result['started']:.1f} s; "
        f"first queue to last receipt: {total:.1f} s = {rate:.1f} emails/s "
        f"(first to last receipt: {send_rate:.1f} emails/s)"
    )
    print(
        f"  SMTP sessions opened: {result['sessions']}; worker peak memory (VmHWM): "
        f"{result['memory']:.0f} MiB"
    )


def describe_pace(result):
    limit = result["rate"]
    _, places = windows(limit)
    minutes = {}
    for at in result["received"]:
        minute = datetime.fromtimestamp(at, tz=UTC).strftime("%H:%M")
        minutes[minute] = minutes.get(minute, 0) + 1
    print(f"  limit {limit}/min ({places} places a window); delivered per clock minute (UTC):")
    for minute, count in minutes.items():
        print(f"    {minute}  {count:5d}  {'#' * round(40 * count / limit)}")
    received = sorted(result["received"])
    busiest, first = 0, 0
    for last, at in enumerate(received):
        while at - received[first] >= 60:
            first += 1
        busiest = max(busiest, last - first + 1)
    allowed = limit + places
    print(
        f"  most in any 60 s: {busiest} (allowed: {allowed}) -> pace held: "
        f"{'yes' if busiest <= allowed else 'NO'}"
    )
    total, rate, _ = per_second(result)
    print(f"  overall: {rate * 60:.0f} emails/min over {total:.0f} s")
    print(f"  rows that waited for their turn (no attempt, no error counted): {result['waited']}")
    if result["probe_latency"] is not None:
        print(
            "  another portal account's email, queued right after the backlog: delivered in "
            f"{result['probe_latency']:.2f} s"
        )


def summary(results, pool):
    print("\nSummary")
    header = (
        f"{'run':34} {'pool':7} {'emails':>6} {'total s':>8} {'emails/s':>9} "
        f"{'SMTP sessions':>13} {'peak MiB':>9} {'failed':>6}"
    )
    print(header)
    print("-" * len(header))
    labels = {
        "reuse": "reused SMTP session, pace off",
        "baseline": "session per message, pace off",
        "paced": "reused session, pace {rate}/min",
    }
    for result in results:
        total, rate, _ = per_second(result)
        label = labels[result["name"]].format(rate=result["rate"])
        print(
            f"{label:34} {pool:7} {len(result['received']):6d} {total:8.1f} {rate:9.1f} "
            f"{result['sessions']:13d} {result['memory']:9.0f} {result['failed_attempts']:6d}"
        )
    by_name = {result["name"]: result for result in results}
    if "reuse" in by_name and "baseline" in by_name:
        reuse, baseline = per_second(by_name["reuse"])[1], per_second(by_name["baseline"])[1]
        if baseline:
            print(
                f"\nReusing the SMTP session: {reuse / baseline:.2f}x the emails per second of one "
                f"session per message (SMTP sessions: {by_name['reuse']['sessions']} instead of "
                f"{by_name['baseline']['sessions']})."
            )


def main():
    # Imported here, not at the top: the worker process imports this module for its backend.
    from bench.users_page import ensure_database, require_postgres

    args = parse_args()
    budget = Budget()
    require_postgres()
    ensure_database()
    call_command("migrate", verbosity=0)
    account = ensure_users(SLUG, max(args.emails, args.paced_emails))
    other = ensure_users(OTHER_SLUG, 1)
    users = list(
        User.objects.filter(portal_account=account).select_related("portal_account").order_by("pk")
    )
    probe_user = User.objects.select_related("portal_account").get(portal_account=other)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-emails-"))
    print(
        f"PostgreSQL {connection.cursor().connection.info.server_version}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; worker logs in {log_dir}"
    )

    # A reply delay stands in for the network to a real relay, where each new session costs the
    # greeting, EHLO and QUIT round trips (and STARTTLS and AUTH, not simulated here).
    describe_session_cost(200, [0, 2])

    smtp = "django.core.mail.backends.smtp.EmailBackend"
    plan = [
        ("reuse", users[: args.emails], smtp, NO_LIMIT, None),
        ("baseline", users[: args.emails], "bench.emails.SessionPerMessageBackend", NO_LIMIT, None),
        ("paced", users[: args.paced_emails], smtp, args.paced_rate, probe_user),
    ]
    results = []
    for name, batch, backend, rate, probe in plan:
        if budget.left() < 20:
            print(f"\n{name}: skipped, out of time")
            continue
        print(f"\n{name}: {len(batch)} login links, {backend.rsplit('.', 1)[-1]}, pace {rate}/min")
        result = run(
            name,
            users=batch,
            pool=args.pool,
            email_backend=backend,
            rate=rate,
            log_dir=log_dir,
            budget=budget,
            probe_user=probe,
        )
        describe(result)
        if name == "paced":
            describe_pace(result)
        results.append(result)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    summary(results, args.pool)


if __name__ == "__main__":
    main()
