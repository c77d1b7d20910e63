"""The batch sender's drain in this process, no Celery: what one email costs the worker, the
mail server and PostgreSQL, each in CPU seconds, and where the worker's time goes.

    cd /work/main && flock /tmp/portal-bench.lock .venv/bin/python bench/emails_drain.py \\
        [--emails 3000] [--runs 2] [--batch-size 100] [--profile out.prof]

The same database, users and SMTP sink as bench/emails.py (portal_admin_bench_mail or
DATABASE_URL; the sink, bench/smtp_sink.py with PIPELINING, in a process of its own), login links
written in one INSERT, then `mail.tasks.drain` of their lane with the pace off. For each run it
prints emails per second, and the CPU seconds per 1,000 emails of this process (the worker),
of the sink's process and of this connection's PostgreSQL backend (from /proc: the bench and
PostgreSQL on the same machine), and the wall time the claims took (mail.batches._claim). With
`--profile`, the last run's cProfile is written to that file and its top lines printed.
"""

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault(
        "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_admin_bench_mail"
    )
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal_admin.settings"
    os.environ["CACHE_URL"] = "locmemcache://"
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-any-deploy-0123456789")
    os.environ["DEBUG"] = "false"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.smtp.EmailBackend"
    os.environ["EMAIL_USE_TLS"] = "false"
    os.environ["EMAIL_HOST_USER"] = ""
    os.environ["EMAIL_HOST_PASSWORD"] = ""

    import django

    django.setup()


def serve(port, ready, counter):
    """The sink in its own process (as a mail server would be): bench/smtp_sink.py."""
    from bench.smtp_sink import LeanSink

    def count(recipient):
        with counter.get_lock():
            counter.value += 1

    LeanSink(port=port, on_message=count).start()
    ready.set()
    while True:
        time.sleep(3600)


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    import cProfile
    import pstats

    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.test.utils import override_settings

    from accounts.models import EmailKind, OutboxEmail, User
    from accounts.models.outbox import lane_of
    from bench.emails import SLUG, clear_mail, ensure_users, free_port, write_rows
    from bench.users_page import ensure_database, require_postgres
    from mail import batches, tasks

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emails", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=settings.OUTBOX_BATCH_SIZE)
    parser.add_argument("--profile", help="write the last run's cProfile here")
    args = parser.parse_args()

    require_postgres()
    ensure_database()
    call_command("migrate", verbosity=0)
    account = ensure_users(SLUG, args.emails)
    users = list(User.objects.filter(portal_account=account).order_by("pk")[: args.emails])

    port = free_port()
    ready, counter = multiprocessing.Event(), multiprocessing.Value("l", 0)
    sink = multiprocessing.Process(target=serve, args=(port, ready, counter), daemon=True)
    sink.start()
    ready.wait(30)
    kind = EmailKind.LOGIN_LINK
    print(
        f"{args.emails} login links a run, batches of {args.batch_size}, load average "
        f"{os.getloadavg()}"
    )
    claim_seconds = [0.0]
    claim = batches._claim

    def timed_claim(*a, **k):
        started = time.perf_counter()
        try:
            return claim(*a, **k)
        finally:
            claim_seconds[0] += time.perf_counter() - started

    batches._claim = timed_claim
    try:
        with override_settings(
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=port,
            EMAIL_TIMEOUT=10,
            OUTBOX_BATCH_SIZE=args.batch_size,
        ):
            for run in range(args.runs):
                clear_mail([account.pk])
                with transaction.atomic():
                    write_rows(users, kind)
                connection.ensure_connection()
                backend = connection.connection.info.backend_pid
                counter.value = 0
                claim_seconds[0] = 0.0
                profile = cProfile.Profile() if args.profile and run == args.runs - 1 else None
                marks = (cpu_seconds(os.getpid()), cpu_seconds(sink.pid), cpu_seconds(backend))
                started = time.perf_counter()
                if profile:
                    profile.enable()
                tasks.drain(lane_of(kind), pace=False, later=False)
                if profile:
                    profile.disable()
                wall = time.perf_counter() - started
                # The last 250 on its way when drain returns is counted by the sink meanwhile.
                time.sleep(0.05)
                spent = [
                    cpu_seconds(pid) - mark
                    for pid, mark in zip((os.getpid(), sink.pid, backend), marks, strict=True)
                ]
                sent = OutboxEmail.objects.filter(
                    portal_account=account, status=OutboxEmail.Status.SENT
                ).count()
                per = 1000 / max(sent, 1)
                print(
                    f"run {run + 1}: {sent} sent, {counter.value} received, {wall:.2f} s = "
                    f"{sent / wall:.0f} emails/s; CPU s per 1,000: worker {spent[0] * per:.2f}, "
                    f"sink {spent[1] * per:.2f}, PostgreSQL {spent[2] * per:.2f}; claims "
                    f"{claim_seconds[0]:.2f} s ({claim_seconds[0] / wall:.0%} of the wall time); "
                    f"load {os.getloadavg()[0]:.2f}"
                )
                if profile:
                    profile.dump_stats(args.profile)
                    pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    finally:
        sink.terminate()
        clear_mail([account.pk])


if __name__ == "__main__":
    main()
