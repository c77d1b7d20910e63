#!/usr/bin/env python3
"""The two commands a fresh machine needs (only Python 3.11+ and pip are assumed):

    python3 run.py demo    # set up, load demo data, serve the console on http://127.0.0.1:8000
    python3 run.py test    # set up, lint, run the whole test suite (extra args go to pytest)

Both create .venv and install the locked dependencies on first use (again only when the lock
files change), so running either twice in a row is fine.
"""

import hashlib
import os
import subprocess
import sys
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
        "accounts": ["api", "portal", "imports"],
        "contacts": ["api", "portal", "imports"],
        "mail": ["api", "portal", "imports"],
        "helpers": ["accounts", "contacts", "mail", "portal", "api", "imports"],
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


def demo():
    env = {**os.environ, "DEBUG": "true"}
    # The demo is the embedded default: SQLite, no broker, emails to a folder.
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "EMAIL_BACKEND"):
        env.pop(name, None)
    manage = [PYTHON, "manage.py"]
    say("Migrating the embedded SQLite database")
    run(*manage, "migrate", "--no-input", "-v", "0", env=env)
    say("Loading demo data")
    run(*manage, "seed_demo", env=env)
    say("Serving the console on http://127.0.0.1:8000 (Ctrl+C stops it)")
    print("    Emails go to var/mail/ and are listed at http://127.0.0.1:8000/dev/sent-mail/")
    os.chdir(ROOT)
    os.execve(PYTHON, [str(PYTHON), "manage.py", "runserver", "127.0.0.1:8000", "--noreload"], env)


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
    run(PYTHON, "manage.py", "makemigrations", "--check", "--dry-run", "-v", "0", env=env)
    say("Production settings pass the deployment checks")
    production = {
        **env,
        "DEBUG": "false",
        "SECRET_KEY": "x" * 20 + hashlib.sha256(b"ci").hexdigest(),
        "ALLOWED_HOSTS": "admin.example.com",
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


def main():
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command not in ("demo", "test"):
        sys.exit(__doc__)
    ensure_environment()
    if command == "demo":
        demo()
    else:
        test(sys.argv[2:])


if __name__ == "__main__":
    main()
