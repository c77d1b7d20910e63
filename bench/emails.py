"""Outbox sending with real Celery workers: emails per second and SMTP sessions of the batch
sender (mail/batches.py) against one task per row (OUTBOX_SEND_IN_BATCHES=false, the sender
before batches), with one and with two workers, the pace off; then how long a sign-in code
waits behind a backlog of 10,000 paced invitations, in both modes.

    cd /work/main && flock /tmp/portal-bench.lock .venv/bin/python bench/emails.py \\
        [--emails 5000] [--per-row-emails 5000] [--backlog 10000]

Everything is real except the mail server: PostgreSQL (database portal_admin_bench_mail, or
DATABASE_URL; created if missing, migrated), Redis (db 12, or BENCH_REDIS_URL) as the broker
and as the pace's shared cache (emptied before and after each run), `celery worker` solo
subprocesses, and an SMTP server in this process (bench/smtp_sink.py, or aiosmtpd with --sink
aiosmtpd) that counts sessions and messages. The workers' rate counts from the commit that hands
the rows over to the last receipt. It stops by itself in under 10 minutes.
"""

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal_admin_bench_mail"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
SECRET_KEY = "bench-only-secret-key-not-for-any-deploy-0123456789"
# The pace "off": far more than a worker can send in a minute.
NO_LIMIT = 10_000_000
# Each run gives up after RUN_TIMEOUT s, and all of them once TOTAL_SECONDS are over: with the
# last workers' shutdown the bench ends within 10 minutes.
RUN_TIMEOUT = 110
TOTAL_SECONDS = 570
# The pace of the backlog runs: the default, two emails a second per portal account and lane.
BACKLOG_RATE = 120
WORKER_READY_TIMEOUT = 30
SLUG, OTHER_SLUG = "bench-mail", "bench-mail-other"
# The SMTP server of the runs (--sink): bench/smtp_sink.py or aiosmtpd.
SINK = "lean"


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
from django.utils import timezone  # noqa: E402

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
from bench.smtp_sink import LeanSink  # noqa: E402
from mail import outbox  # noqa: E402
from portal_admin.celery import app as celery_app  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emails", type=int, default=5000, help="emails in the batched runs")
    parser.add_argument(
        "--per-row-emails", type=int, default=5000, help="emails in the one-task-per-row runs"
    )
    parser.add_argument(
        "--backlog", type=int, default=10_000, help="paced invitations ahead of the sign-in code"
    )
    parser.add_argument(
        "--only",
        help="these runs alone, by name, comma-separated (batched-1, per-row-1, batched-2, "
        "per-row-2, backlog-batched, backlog-per-row)",
    )
    parser.add_argument(
        "--no-pipelining",
        action="store_true",
        help="the mail server does not offer PIPELINING (RFC 2920)",
    )
    parser.add_argument(
        "--sink",
        choices=["lean", "aiosmtpd"],
        default="lean",
        help="the SMTP server: bench/smtp_sink.py (default) or aiosmtpd, which spends about as "
        "much CPU an email as the worker it measures, on the same cores",
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
    """Each run starts from users with no email and no token: the last run's are deleted, and
    the dead rows vacuumed away, as autovacuum would in production (this bench's server may run
    without it: the marks and the claims then wrote into ever bigger indexes, run after run)."""
    tables = "accounts_outboxemail, accounts_logintoken"
    with connection.cursor() as cursor:
        # Statistics first: a table never analyzed had these deletes planned as a loop over
        # every row of it, once a token (15 minutes).
        cursor.execute(f"ANALYZE {tables}")
    LoginToken.objects.filter(user__portal_account__in=accounts).delete()
    OutboxEmail.objects.filter(portal_account__in=accounts).delete()
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM {tables}")


def analyze_outbox():
    """The outbox's statistics with the run's rows in it (inside the transaction that writes
    them, which ANALYZE sees): a production outbox holds millions of rows, and statistics of an
    empty one (the bench's between runs) had PostgreSQL mark each row sent through the pending
    rows' index range rather than its primary key, reading every pending row once an email."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE accounts_outboxemail")


# --- The mail server -------------------------------------------------------------------------


class Sink:
    """Counts SMTP sessions, and each message with the time it arrived and its recipient. It
    offers PIPELINING as Postfix, Exim and the big relays do (unless `pipelining` is off)."""

    def __init__(self, pipelining=True):
        self.sessions = 0
        self.received = []
        self.pipelining = pipelining

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if not self.pipelining:
            return responses
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

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
    """`celery worker --pool=solo`, its output in a file: one process sending one email at a
    time."""

    def __init__(self, log_path, *, email_port, batches, rate):
        self.log_path = log_path
        self.pool = "solo"
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
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OUTBOX_SEND_IN_BATCHES": "true" if batches else "false",
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

    def pids(self):
        return [self.process.pid, *_children(self.process.pid)]

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


def cpu_seconds(pids):
    """User and system CPU seconds of these processes so far (from /proc)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


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
    """The bench's Redis db is its own: no task or pace counter of an earlier run survives."""
    redis.Redis.from_url(REDIS_URL).flushdb()


def write_rows(users, kind):
    """One pending row of `kind` a user, due now, in one INSERT; the outbox analyzed with them in
    it (this server runs without autovacuum). Call inside the transaction that writes them."""
    now = timezone.now()
    rows = OutboxEmail.objects.bulk_create(
        OutboxEmail(
            portal_account_id=user.portal_account_id,
            user=user,
            to_email=user.email,
            kind=kind,
            queued_at=now,
            next_attempt_at=now,
        )
        for user in users
    )
    analyze_outbox()
    return rows


def queue_in_bulk(users, kind):
    """As the CSV import and the bulk invite write rows: one INSERT, handed over on commit (the
    rows of one email at a time, mail.outbox.queue_email, cost the web process about 3 ms each:
    not what is measured here)."""
    with transaction.atomic():
        rows = write_rows(users, kind)
        outbox.hand_over_on_commit([row.pk for row in rows], {kind: len(rows)})


class Run:
    """Workers and a mail server for one measurement; stopped and emptied on the way out."""

    def __init__(self, name, *, workers, batches, rate, accounts, log_dir, budget, pipelining):
        self.name, self.budget = name, budget
        flush_redis()
        clear_mail(accounts)
        port = free_port()
        if SINK == "lean":
            self.sink = self.controller = LeanSink(port=port, pipelining=pipelining)
        else:
            self.sink = Sink(pipelining)
            self.controller = SinkController(
                self.sink, hostname="127.0.0.1", port=port, server_hostname="sink"
            )
        self.workers = [
            Worker(log_dir / f"{name}-{n}.log", email_port=port, batches=batches, rate=rate)
            for n in range(workers)
        ]

    def __enter__(self):
        self.controller.start()
        # aiosmtpd's Controller.start() connects once itself, to check that the server answers.
        self.sink.sessions = 0
        for worker in self.workers:
            worker.start(self.budget)
        return self

    def __exit__(self, *exc):
        for worker in self.workers:
            worker.stop()
        self.controller.stop()
        flush_redis()

    def wait_for(self, condition):
        deadline = time.monotonic() + max(0, min(RUN_TIMEOUT, self.budget.left()))
        while not condition() and time.monotonic() < deadline:
            for worker in self.workers:
                if worker.process.poll() is not None:
                    raise RuntimeError(f"A worker died:\n{worker.output()}")
            time.sleep(0.02)
        return condition()


def throughput(name, users, *, workers, batches, log_dir, budget, pipelining):
    with Run(
        name,
        workers=workers,
        batches=batches,
        rate=NO_LIMIT,
        accounts=[users[0].portal_account_id],
        log_dir=log_dir,
        budget=budget,
        pipelining=pipelining,
    ) as run:
        worker_pids = [pid for worker in run.workers for pid in worker.pids()]
        worker_cpu = cpu_seconds(worker_pids)
        started = time.time()
        queue_in_bulk(users, EmailKind.LOGIN_LINK)
        committed = time.time()
        sink_cpu = cpu_seconds([os.getpid()])
        complete = run.wait_for(lambda: len(run.sink.received) >= len(users))
        # The workers' own CPU and this process's (the SMTP sink above all) while the emails
        # went out: what a rate is made of on a busy machine. (Not PostgreSQL's: the workers'
        # connections end with their tasks, one task per row in the per-row runs.)
        sink_cpu = cpu_seconds([os.getpid()]) - sink_cpu
        worker_cpu = cpu_seconds(worker_pids) - worker_cpu
        memory = max(worker.peak_memory_mib() for worker in run.workers)
    received = [at for at, _ in run.sink.received]
    per_thousand = 1000 / len(received) if received else float("nan")
    # The workers' rate: from the commit (which hands the rows over) to the last receipt.
    seconds = (max(received) - committed) if received else 0.0
    return {
        "name": name,
        "workers": workers,
        "batches": batches,
        "queued": len(users),
        "received": len(received),
        "recipients": len({to for _, to in run.sink.received}),
        "complete": complete,
        "queueing": committed - started,
        "seconds": seconds,
        "rate": len(received) / seconds if seconds else 0.0,
        "sessions": run.sink.sessions,
        "memory": memory,
        "worker_cpu": worker_cpu * per_thousand,
        "sink_cpu": sink_cpu * per_thousand,
    }


def urgent_behind_backlog(name, backlog, code_for, other, *, batches, log_dir, budget, pipelining):
    """Queue `backlog` paced invitations, then a sign-in code for a user of the same portal
    account and a login link of another account: seconds from each commit to its receipt."""
    accounts = [backlog[0].portal_account_id, other.portal_account_id]
    with Run(
        name,
        workers=1,
        batches=batches,
        rate=BACKLOG_RATE,
        accounts=accounts,
        log_dir=log_dir,
        budget=budget,
        pipelining=pipelining,
    ) as run:
        queue_in_bulk(backlog, EmailKind.INVITATION)
        with transaction.atomic():
            outbox.queue_email(code_for, EmailKind.LOGIN_CODE)
        code_at = time.time()
        with transaction.atomic():
            outbox.queue_email(other, EmailKind.LOGIN_LINK)
        link_at = time.time()
        probes = {code_for.email: code_at, other.email: link_at}
        run.wait_for(lambda: all(to in {r for _, r in run.sink.received} for to in probes))
        arrivals = {to: at for at, to in run.sink.received if to in probes}
        invitations = sum(1 for _, to in run.sink.received if to not in probes)
    return {
        "name": name,
        "batches": batches,
        "backlog": len(backlog),
        "code": arrivals.get(code_for.email, float("nan")) - code_at,
        "other": arrivals.get(other.email, float("nan")) - link_at,
        "invitations": invitations,
    }


class Budget:
    """The whole bench stops within TOTAL_SECONDS: each wait gets what is left."""

    def __init__(self):
        self.end = time.monotonic() + TOTAL_SECONDS

    def left(self):
        return self.end - time.monotonic()


# --- Report ----------------------------------------------------------------------------------


def describe(result):
    mode = "batched" if result["batches"] else "one task per row"
    print(
        f"  {mode}, {result['workers']} worker(s): delivered {result['received']} of "
        f"{result['queued']} ({result['recipients']} recipients)"
        f"{'' if result['complete'] else ' (TIMED OUT)'}; queued and committed in "
        f"{result['queueing']:.1f} s, then {result['seconds']:.1f} s from the commit to the last "
        f"receipt = {result['rate']:.1f} emails/s; SMTP sessions "
        f"{result['sessions']}; peak worker memory {result['memory']:.0f} MiB; CPU seconds per "
        f"1,000 emails: worker(s) {result['worker_cpu']:.2f}, the SMTP sink (this process) "
        f"{result['sink_cpu']:.2f}"
    )


def describe_backlog(result):
    mode = "batched" if result["batches"] else "one task per row"
    print(
        f"  {mode}: sign-in code (same account) {result['code']:.2f} s, login link (another "
        f"account) {result['other']:.2f} s; invitations sent meanwhile: {result['invitations']}"
    )


def summary(runs, backlogs, args):
    print("\nSummary (solo workers, pace off; seconds from the commit to the last receipt)")
    header = (
        f"{'mode':18} {'workers':>7} {'emails':>7} {'seconds':>8} {'emails/s':>9} {'SMTP':>6} "
        f"{'worker CPU s/1k':>15} {'sink CPU s/1k':>13}"
    )
    print(header)
    print("-" * len(header))
    for result in runs:
        mode = "batched" if result["batches"] else "one task per row"
        print(
            f"{mode:18} {result['workers']:7d} {result['received']:7d} {result['seconds']:8.1f} "
            f"{result['rate']:9.1f} {result['sessions']:6d} {result['worker_cpu']:15.2f} "
            f"{result['sink_cpu']:13.2f}"
        )
    by = {(r["batches"], r["workers"]): r for r in runs}
    backlog = {r["batches"]: r for r in backlogs}
    batched, per_row = by.get((True, 1)), by.get((False, 1))
    if batched and per_row and True in backlog and False in backlog:
        complete = "every email delivered" if batched["complete"] else "TIMED OUT"
        print(
            "\n| bench | now | target |\n| --- | --- | --- |\n"
            f"| `bench/emails.py`, {batched['queued']:,} login emails, one solo worker | "
            f"{batched['rate']:.1f} emails/s batched ({batched['worker_cpu']:.2f} worker CPU s "
            f"per 1,000), {batched['sessions']} SMTP sessions, "
            f"{complete} (one task per row, same run: {per_row['rate']:.1f}/s, "
            f"{per_row['sessions']} sessions); 2 workers: "
            f"{by[(True, 2)]['rate'] if (True, 2) in by else float('nan'):.1f}/s "
            f"(per row {by[(False, 2)]['rate'] if (False, 2) in by else float('nan'):.1f}/s); "
            f"urgent mail behind {args.backlog:,} paced invitations: sign-in code "
            f"{backlog[True]['code']:.2f} s, another account's link {backlog[True]['other']:.2f} s "
            f"(per row: {backlog[False]['code']:.2f} s / {backlog[False]['other']:.2f} s) | "
            "≥ 800 emails/s per worker with the pace off; urgent mail < 1 s behind any backlog |"
        )


def main():
    # Imported here, not at the top: the worker process imports this module for its backend.
    from bench.users_page import ensure_database, require_postgres

    global SINK
    args = parse_args()
    SINK = args.sink
    budget = Budget()
    require_postgres()
    ensure_database()
    call_command("migrate", verbosity=0)
    account = ensure_users(SLUG, max(args.emails, args.per_row_emails, args.backlog + 1))
    other = ensure_users(OTHER_SLUG, 1)
    users = list(
        User.objects.filter(portal_account=account).select_related("portal_account").order_by("pk")
    )
    other_user = User.objects.select_related("portal_account").get(portal_account=other)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-emails-"))
    print(
        f"PostgreSQL {connection.cursor().connection.info.server_version}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()}; worker logs in {log_dir}; "
        f"the mail server ({args.sink}) "
        f"{'does not offer' if args.no_pipelining else 'offers'} PIPELINING"
    )
    plan = [
        ("batched-1", args.emails, 1, True),
        ("per-row-1", args.per_row_emails, 1, False),
        ("batched-2", args.emails, 2, True),
        ("per-row-2", args.per_row_emails, 2, False),
    ]
    runs, backlogs = [], []
    only = set(args.only.split(",")) if args.only else None
    for name, count, workers, batches in plan:
        if only is not None and name not in only:
            continue
        if budget.left() < 30:
            print(f"\n{name}: skipped, out of time")
            continue
        print(f"\n{name}: {count} login links, {workers} worker(s)")
        result = throughput(
            name,
            users[:count],
            workers=workers,
            batches=batches,
            log_dir=log_dir,
            budget=budget,
            pipelining=not args.no_pipelining,
        )
        describe(result)
        runs.append(result)
    for batches in (True, False):
        name = f"backlog-{'batched' if batches else 'per-row'}"
        if only is not None and name not in only:
            continue
        if budget.left() < 30:
            print(f"\n{name}: skipped, out of time")
            continue
        print(f"\n{name}: {args.backlog} invitations paced at {BACKLOG_RATE}/min, then urgent mail")
        result = urgent_behind_backlog(
            name,
            users[: args.backlog],
            users[args.backlog],
            other_user,
            batches=batches,
            log_dir=log_dir,
            budget=budget,
            pipelining=not args.no_pipelining,
        )
        describe_backlog(result)
        backlogs.append(result)
    print(f"\nload average after: {os.getloadavg()}")
    summary(runs, backlogs, args)


if __name__ == "__main__":
    main()
