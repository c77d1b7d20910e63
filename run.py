#!/usr/bin/env python3
"""The commands a fresh machine needs (only Python 3.11+ and pip are assumed):

    python3 run.py demo        # set up, load demo data, serve the console on http://127.0.0.1:8000
                               # (--port PORT or --bind HOST:PORT to serve elsewhere)
    python3 run.py test        # set up, lint, run the whole test suite (extra args go to pytest)
    python3 run.py production  # gunicorn, a Celery worker and beat against PostgreSQL and Redis
                               # (--bind HOST:PORT, default 127.0.0.1:8000; --without-worker:
                               # gunicorn and beat only, the workers run elsewhere)

Each creates .venv and installs the locked dependencies on first use (again only when the lock
files change), so running any of them twice in a row is fine.
"""

import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
LOCK = ROOT / "requirements-dev.txt"
STAMP = VENV / ".installed-lock"
# PACKAGE:OTHER - PACKAGE never imports OTHER. The domain (accounts, contacts) knows none of the
# apps built on it; helpers know no app at all.
LAYERING = [
    f"{low}:{high}"
    for low, highs in {
        "accounts": ["api", "portal", "imports", "operations", "webhooks"],
        "contacts": ["api", "portal", "imports", "operations", "webhooks"],
        "mail": ["api", "portal", "imports", "operations", "webhooks"],
        "helpers": [
            *("accounts", "contacts", "mail", "portal", "api", "imports", "operations"),
            "webhooks",
        ],
    }.items()
    for high in highs
]


def say(text):
    print(f"\n==> {text}", flush=True)


def run(*args, env=None):
    result = subprocess.run([str(a) for a in args], cwd=ROOT, env=env)
    if result.returncode != 0:
        sys.exit(result.returncode)


def ensure_environment():
    if sys.version_info < (3, 11):  # noqa: UP036 - run.py is started by any python3
        sys.exit("Portal Admin needs Python 3.11 or newer.")
    if not PYTHON.exists():
        say("Creating the virtual environment in .venv")
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text() != wanted:
        say("Installing the locked dependencies")
        run(PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", LOCK)
        STAMP.write_text(wanted)


def demo(args):
    # The demo is the embedded default: SQLite, no broker, a cache of its own, emails to a
    # folder. Set here, not just left out: the settings read .env too, and a .env written for
    # production would otherwise point the demo, and its public logins, at production's database.
    env = {
        **os.environ,
        "DEBUG": "true",
        "DATABASE_URL": f"sqlite:///{ROOT / 'db.sqlite3'}",
        "CELERY_BROKER_URL": "",
        "CACHE_URL": "locmemcache://",
        "EMAIL_BACKEND": "mail.mail_folder.MailFolderBackend",
        "MAIL_FOLDER": str(ROOT / "var" / "mail"),
        # Plain HTTP on this machine, whatever a production .env says of hosts and TLS.
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "SECURE_HSTS_SECONDS": "0",
    }
    bind = _demo_bind(args)
    host = bind.rsplit(":", 1)[0].strip("[]")
    env["CSRF_TRUSTED_ORIGINS"] = f"http://{bind}"
    env["ALLOWED_HOSTS"] = "127.0.0.1,localhost"
    if host not in ("127.0.0.1", "localhost", "::1"):
        env["ALLOWED_HOSTS"] = "*"  # reached by whatever name or address the network uses
        say(
            f"Warning: the demo on {host} serves its public logins (password demo-password-1) "
            "with DEBUG on to whoever reaches this machine. Use it on a trusted network only."
        )
    # The links in the demo's emails point at where it serves.
    env["PORTAL_BASE_URL"] = f"http://{bind}"
    manage = [PYTHON, "manage.py"]
    say("Migrating the embedded SQLite database")
    run(*manage, "migrate", "--no-input", "-v", "0", env=env)
    say("Loading demo data")
    run(*manage, "seed_demo", env=env)
    say(f"Serving the console on http://{bind} (Ctrl+C stops it)")
    print(f"    Emails go to var/mail/ and are listed at http://{bind}/dev/sent-mail/")
    os.chdir(ROOT)
    os.execve(PYTHON, [str(PYTHON), "manage.py", "runserver", bind, "--noreload"], env)


def _demo_bind(args):
    """HOST:PORT from [--bind HOST:PORT] or [--port PORT] (another demo, say, has 8000)."""
    usage = "Usage: python3 run.py demo [--bind HOST:PORT | --port PORT]"
    bind = "127.0.0.1:8000"
    args = list(args)
    while args:
        option = args.pop(0)
        if option == "--bind" and args:
            bind = args.pop(0)
        elif option == "--port" and args and args[0].isdigit():
            bind = f"127.0.0.1:{args.pop(0)}"
        else:
            sys.exit(usage)
    return bind


def test(pytest_args):
    say("Lint (ruff)")
    run(BIN / "ruff", "check", ".")
    run(BIN / "ruff", "format", "--check", "--quiet", ".")
    import_graph = ROOT.parent / "shared" / "tools" / "import-graph.py"
    if import_graph.exists():
        say("Layering: no import circle; the domain imports no audience app")
        run(sys.executable, import_graph, "--forbid", *LAYERING)
    else:
        say(f"Layering not checked: {import_graph} is not beside this checkout")
    say("Migrations are up to date")
    env = {**os.environ, "SECRET_KEY": os.environ.get("SECRET_KEY", "tests-only-secret-key")}
    # Against an empty database in memory: the check compares models with migration files, and
    # Django's history check would warn about a PostgreSQL database the test run creates later.
    check_env = {**env, "DATABASE_URL": "sqlite://:memory:"}
    run(PYTHON, "manage.py", "makemigrations", "--check", "--dry-run", "-v", "0", env=check_env)
    say("Production settings pass the deployment checks")
    production = {
        **env,
        "DEBUG": "false",
        "SECRET_KEY": "x" * 20 + hashlib.sha256(b"ci").hexdigest(),
        "ALLOWED_HOSTS": "admin.example.com",
        "PORTAL_BASE_URL": "https://admin.example.com",
        "DEFAULT_FROM_EMAIL": "Portal <no-reply@example.com>",
        # Production shares the sign-in throttle's counters between processes (accounts.E001).
        "CACHE_URL": os.environ.get("CACHE_URL", "redis://127.0.0.1:6379/1"),
    }
    run(PYTHON, "manage.py", "check", "--deploy", "--fail-level", "WARNING", env=production)
    say("Test suite")
    if pytest_args:  # as asked (add `-n auto` to spread them over the cores)
        run(PYTHON, "-m", "pytest", *pytest_args)
        return
    # One pytest process per core (pytest-xdist), except for the tests that start a real Celery
    # worker: those run after, one at a time, so that two workers never drain the same queue.
    run(PYTHON, "-m", "pytest", "-n", "auto", "-m", "not worker")
    run(PYTHON, "-m", "pytest", "-m", "worker")


# --- production ---
#
# The production shape on one machine: gunicorn (gunicorn.conf.py), a Celery worker and Celery
# beat, each logging to its own file, after migrate and collectstatic. A small supervisor rather
# than honcho or supervisord: it gives each process the stop it expects (SIGTERM: a graceful
# gunicorn, a warm Celery shutdown that finishes its tasks), keeps Ctrl+C's SIGINT away from them
# (their own process groups) and restarts only what may be restarted, loudly. A worker or beat
# that exits on its own is started again (a Redis restart once crashed the worker inside kombu,
# and the console went down with it): the outbox and the imports are in PostgreSQL, so a new
# worker picks up where the old one stopped. One that keeps exiting stops the stack and says why,
# as gunicorn exiting does (its master already replaces its own crashed workers).

POSTGRES_SCHEMES = ("postgres://", "postgresql://", "pgsql://")
REDIS_SCHEMES = ("redis://", "rediss://")
# Time to finish requests in flight (gunicorn's graceful_timeout is 30 s) and tasks at hand;
# STOP_TIMEOUT_SECONDS sets it.
STOP_SECONDS = 60
# After a cold shutdown (SIGQUIT) the worker hands its unfinished tasks back to Redis
# (acks_late); this long for that before SIGKILL.
HAND_BACK_SECONDS = 10
# The processes started again when they exit on their own, and how often: more exits than this
# within the window is a fault a restart does not mend (a bad setting, a broken install).
RESTARTED = ("worker", "beat")
RESTART_LIMIT = 5
RESTART_WINDOW_SECONDS = 600
# The wait before the first restart, doubled for each restart still in the window.
RESTART_DELAY_SECONDS = 1.0


def _environment():
    """The environment as the settings see it: .env under what is set already (django-environ's
    read_env does the same). Every process started here gets it, run.py's own settings too."""
    values = {}
    dotenv = ROOT / ".env"
    if dotenv.exists():
        for line in dotenv.read_text().splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and key and not key.startswith("#"):
                values[key.strip()] = value.strip().strip("'\"")
    return {**values, **os.environ}


def refuse_without_services():
    env = _environment()
    problems = []
    if not env.get("DATABASE_URL", "").startswith(POSTGRES_SCHEMES):
        problems.append(
            "DATABASE_URL must name a PostgreSQL database, e.g. "
            "DATABASE_URL=postgres://portal_admin:secret@127.0.0.1:5432/portal_admin "
            "(without it, Portal Admin uses the demo's SQLite file)."
        )
    if not env.get("CELERY_BROKER_URL", "").startswith(REDIS_SCHEMES):
        problems.append(
            "CELERY_BROKER_URL must name Redis, e.g. CELERY_BROKER_URL=redis://127.0.0.1:6379/0 "
            "(without a broker, tasks run in the web process and nothing runs beat's schedule)."
        )
    if not env.get("SECRET_KEY"):
        problems.append(
            "SECRET_KEY must be set to a long random string, e.g. the output of "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(50))'."
        )
    if not problems:
        problems += _unreachable_database(env["DATABASE_URL"])
    if problems:
        sys.exit(
            "run.py production needs PostgreSQL, Redis and a secret key:\n"
            + "".join(f"  - {problem}\n" for problem in problems)
            + "Set them in the environment or in .env (see .env.example)."
        )
    if not env.get("PORTAL_BASE_URL"):
        say(
            "PORTAL_BASE_URL is not set: the links in emails (invitations, password resets) "
            "point at http://127.0.0.1:8000. Set it to the address people open, e.g. "
            "PORTAL_BASE_URL=https://admin.example.com (manage.py check --deploy says so too)."
        )


def _unreachable_database(url):
    """[the problem] when nothing answers at DATABASE_URL's host and port (migrate would stop
    with a long traceback); [] when something does, or the URL names a socket. Redis may be
    down at the start: the worker and beat wait for it, the web serves meanwhile."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if not parts.hostname:
        return []
    port = parts.port or 5432
    try:
        socket.create_connection((parts.hostname, port), timeout=3).close()
    except OSError as error:
        return [
            f"Nothing answers at {parts.hostname}:{port}, the PostgreSQL of DATABASE_URL "
            f"({error.strerror or error}). Start PostgreSQL there, or fix DATABASE_URL."
        ]
    return []


def _options(args, env):
    """(bind, with_worker) from [--bind HOST:PORT] [--without-worker]."""
    usage = "Usage: python3 run.py production [--bind HOST:PORT] [--without-worker]"
    bind, with_worker = env.get("BIND") or "127.0.0.1:8000", True
    args = list(args)
    while args:
        option = args.pop(0)
        if option == "--bind" and args:
            bind = args.pop(0)
        elif option == "--without-worker":
            with_worker = False
        else:
            sys.exit(usage)
    return bind, with_worker


def production(args):
    env = _environment()
    bind, with_worker = _options(args, env)
    # JSON lines unless asked otherwise (settings.LOG_FORMAT's default already, unless DEBUG).
    env.setdefault("LOG_FORMAT", "json")
    log_dir = ROOT / env.get("LOG_DIR", "var/log")
    run_dir = ROOT / env.get("RUN_DIR", "var/run")
    log_dir.mkdir(parents=True, exist_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = _only_one_stack(run_dir)  # noqa: F841 (held, open, for as long as this runs)
    # Counters of every process of this run, added up at /metrics (prometheus_client's
    # multiprocess mode); a new run starts from zero, as Prometheus expects after a restart.
    metrics_dir = run_dir / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir()
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)

    manage = [PYTHON, "manage.py"]
    _deploy_checks(manage, env)
    say("Migrating the database")
    _migrate(manage, env)
    say("Collecting static files")
    run(*manage, "collectstatic", "--no-input", "-v", "0", env=env)

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    web_workers = env.get("WEB_CONCURRENCY") or 2 * (cores or 1) + 1
    # --quiet: no ASCII-art banner on stdout, so that the log files hold JSON lines only.
    celery = [PYTHON, "-m", "celery", "-A", "portal_admin", "--quiet"]
    worker = [*celery, "worker", "--loglevel=INFO"]
    if env.get("WORKER_CONCURRENCY"):
        worker.append(f"--concurrency={env['WORKER_CONCURRENCY']}")
    beat_schedule = run_dir / "celerybeat-schedule"
    processes = [
        (
            "web",
            f"gunicorn, {web_workers} workers, on http://{bind}/",
            [PYTHON, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", bind]
            # Its control socket beside this run's files, not one per user shared by every
            # gunicorn on the machine.
            + ["--control-socket", run_dir / "gunicorn.ctl", "portal_admin.wsgi"],
        ),
        (
            "worker",
            f"Celery worker, {env.get('WORKER_CONCURRENCY') or cores} processes",
            worker,
        ),
        (
            "beat",
            "Celery beat",
            [*celery, "beat", "--loglevel=INFO"] + ["--schedule", beat_schedule],
        ),
    ]
    if not with_worker:
        # Workers run elsewhere (other machines, or bench/load.py, which kills and restarts one).
        processes = [process for process in processes if process[0] != "worker"]
    say(f"Starting {', '.join(name for name, _, _ in processes)} (Ctrl+C or SIGTERM stops all)")
    supervisor = Supervisor(env, log_dir, float(env.get("STOP_TIMEOUT_SECONDS") or STOP_SECONDS))
    for name, what, command in processes:
        supervisor.start(name, what, command)
    print(f"    health: http://{bind}/health/ and /health/ready/, metrics: /metrics", flush=True)
    sys.exit(supervisor.watch())


def _only_one_stack(run_dir):
    """Refuse a second stack on the same run directory: its start would wipe the first one's
    metrics, and its beat's and worker's heartbeats, under the same names, would be taken for the
    first one's. Returns the open lock file, held until this process ends."""
    lock = open(run_dir / "production.lock", "a+")  # noqa: SIM115 (held for the run)
    try:
        import fcntl

        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError:  # not on POSIX: production runs on Linux, where this always holds
        return lock
    except OSError:
        lock.seek(0)
        sys.exit(
            f"Another `run.py production` (pid {lock.read().strip() or '?'}) runs from {run_dir}. "
            "Stop it first, or give this one a RUN_DIR and LOG_DIR of its own."
        )
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()
    return lock


def _deploy_checks(manage, env):
    """`check --deploy`: its errors (a cache each process keeps alone, links to 127.0.0.1, a
    sender @localhost...) stop the start, unless DEPLOY_CHECKS=warn asks to start anyway (a
    trial on one machine); its warnings are shown either way."""
    say("Checking the settings (manage.py check --deploy)")
    lenient = env.get("DEPLOY_CHECKS", "").lower() == "warn"
    level = "CRITICAL" if lenient else "ERROR"
    result = subprocess.run(
        [str(part) for part in [*manage, "check", "--deploy", "--fail-level", level]],
        cwd=ROOT,
        env=env,
    )
    if result.returncode != 0:
        sys.exit(
            "\nThe settings above are not fit for production: fix the errors (README, 'The "
            "settings a production install must give'), or set DEPLOY_CHECKS=warn to start "
            "anyway for a trial on this machine."
        )


# What PostgreSQL says when DATABASE_URL names a database or user it does not have, and what to do.
_DATABASE_REFUSALS = [
    (
        r'database "([^"]+)" does not exist',
        "PostgreSQL has no database {0}. Create it first (createdb -h HOST -U USER {0}, or "
        "CREATE DATABASE {0} OWNER ...), then start again.",
    ),
    (
        r'role "([^"]+)" does not exist',
        "PostgreSQL has no user {0}. Create it first (createuser -h HOST -U postgres {0}), or "
        "fix the user in DATABASE_URL.",
    ),
    (
        r'password authentication failed for user "([^"]+)"',
        "PostgreSQL refused the password of user {0}: fix the password in DATABASE_URL.",
    ),
]


def _migrate(manage, env):
    """migrate, with one plain sentence instead of a traceback for what an operator gets wrong
    first: a database or user that is not there yet, a wrong password."""
    result = subprocess.run(
        [str(part) for part in [*manage, "migrate", "--no-input"]],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    if result.returncode == 0:
        sys.stderr.write(result.stderr)
        return
    for pattern, advice in _DATABASE_REFUSALS:
        found = re.search(pattern, result.stderr)
        if found:
            sys.exit(advice.format(found.group(1)))
    sys.stderr.write(result.stderr)
    sys.exit(result.returncode)


class Supervisor:
    def __init__(
        self,
        env,
        log_dir,
        stop_seconds,
        *,
        restarted=RESTARTED,
        restart_limit=RESTART_LIMIT,
        restart_window=RESTART_WINDOW_SECONDS,
        restart_delay=RESTART_DELAY_SECONDS,
    ):
        self.env = env
        self.log_dir = log_dir
        self.stop_seconds = stop_seconds
        self.children = {}
        self.commands = {}
        self.stop_requested = 0
        self.restarted = restarted
        self.restart_limit = restart_limit
        self.restart_window = restart_window
        self.restart_delay = restart_delay
        self.exits = {}  # name -> monotonic times of its exits within the window
        self.due = {}  # name -> monotonic time of its planned restart

    def start(self, name, what, command):
        self.commands[name] = (what, command)
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "ab") as log:
            child = subprocess.Popen(
                [str(part) for part in command],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group: the terminal's Ctrl+C reaches this supervisor only,
                # which then stops each child the way it expects.
                process_group=0,
            )
        self.children[name] = (child, log_path)
        print(f"    {name:<6} pid {child.pid:<7} {what}; logs to {log_path}", flush=True)

    def _on_signal(self, signum, frame):
        self.stop_requested += 1

    def watch(self):
        """Until a stop is asked for or a child exits that may not be restarted (or has been
        too often); then stop them all. The exit code."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        while not self.stop_requested:
            now = time.monotonic()
            for name, (child, log_path) in list(self.children.items()):
                if name in self.due:
                    if now >= self.due[name]:
                        del self.due[name]
                        self.start(name, *self.commands[name])
                    continue
                if child.poll() is None:
                    continue
                delay = self._restart_delay(name, now)
                verdict = f"started again in {delay:g} s" if delay is not None else "not restarted"
                print(
                    f"\n==> {name} exited (code {child.returncode}) on its own; {verdict}. "
                    f"The end of {log_path}:",
                    flush=True,
                )
                print(_tail(log_path), flush=True)
                if delay is None:
                    self.stop_all(f"{name} exited")
                    return 1
                self.due[name] = now + delay
            time.sleep(0.2)
        return 0 if self.stop_all("asked to stop") else 1

    def _restart_delay(self, name, now):
        """Seconds until `name` is started again after an exit now, or None: it may not be
        restarted, or it exited too often within the window."""
        if name not in self.restarted:
            return None
        recent = [at for at in self.exits.get(name, []) if now - at < self.restart_window]
        if len(recent) >= self.restart_limit:
            print(
                f"\n==> {name} exited {len(recent) + 1} times within "
                f"{self.restart_window:g} s: something a restart does not mend.",
                flush=True,
            )
            return None
        self.exits[name] = [*recent, now]
        return self.restart_delay * 2 ** len(recent)

    def stop_all(self, reason):
        """SIGTERM each, wait; whoever is left gets SIGQUIT (Celery's cold shutdown hands its
        tasks back) and at last SIGKILL. Another Ctrl+C skips the waiting. True when all
        stopped in time."""
        say(f"Stopping ({reason}); Ctrl+C again to kill them at once")
        self.stop_requested = 1
        self._signal_all(signal.SIGTERM)
        in_time = self._wait(self.stop_seconds)
        if not in_time:
            self._signal_all(signal.SIGQUIT)
            self._wait(HAND_BACK_SECONDS)
        for name, (child, _log) in self.children.items():
            if child.poll() is None:
                print(f"    {name} did not stop: killed", flush=True)
            # Its leftovers too (a gunicorn or pool worker orphaned by a crash).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        return in_time

    def _signal_all(self, signum):
        for child, _log in self.children.values():
            if child.poll() is None:
                child.send_signal(signum)

    def _wait(self, seconds):
        deadline = time.monotonic() + seconds
        reported = set()
        while time.monotonic() < deadline and self.stop_requested < 2:
            for name, (child, _log) in self.children.items():
                if child.poll() is not None and name not in reported:
                    reported.add(name)
                    print(f"    {name} stopped (exit code {child.returncode})", flush=True)
            if len(reported) == len(self.children):
                return True
            time.sleep(0.1)
        return False


def _tail(path, lines=20):
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as error:
        return f"(could not read it: {error})"


def main():
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command not in ("demo", "test", "production"):
        sys.exit(__doc__)
    if command == "production":
        # Before anything is installed: a machine without PostgreSQL and Redis hears it first.
        refuse_without_services()
    ensure_environment()
    if command == "demo":
        demo(sys.argv[2:])
    elif command == "production":
        production(sys.argv[2:])
    else:
        test(sys.argv[2:])


if __name__ == "__main__":
    main()
