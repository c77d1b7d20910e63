"""run.py production's supervisor with stand-in processes (no services needed): a worker that
exits on its own is started again, loudly, while the web keeps running; one that keeps exiting
stops the stack; the web exiting stops it at once. Each run is a subprocess of its own, since
the supervisor takes over SIGINT and SIGTERM."""

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Each stand-in appends a line to its log when it starts, so the log counts its starts.
SCRIPT = """
import sys, time
sys.path.insert(0, {root!r})
import run

web, worker, limit = {web!r}, {worker!r}, {limit!r}
supervisor = run.Supervisor(
    {{}}, run.Path({log_dir!r}), 5, restart_limit=limit, restart_window=60, restart_delay=0.05
)
def stand_in(code):
    return [sys.executable, "-c", f"print('started', flush=True); {{code}}"]
supervisor.start("web", "web stand-in", stand_in(web))
supervisor.start("worker", "worker stand-in", stand_in(worker))
sys.exit(supervisor.watch())
"""


def supervise(tmp_path, *, web, worker, limit=3, timeout=30):
    script = SCRIPT.format(
        root=str(ROOT), web=web, worker=worker, limit=limit, log_dir=str(tmp_path)
    )
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": "/usr/bin:/bin"},
    )


def starts(tmp_path, name):
    return (tmp_path / f"{name}.log").read_text().count("started")


def test_a_worker_that_crashes_is_started_again_and_the_web_keeps_running(tmp_path):
    # The worker crashes twice, then stays up; the web exits by itself after a while, which
    # stops the stack (and ends the test).
    flag = tmp_path / "crashes"
    worker = (
        f"import pathlib, sys, time; p = pathlib.Path({str(flag)!r}); n = len(p.read_text()) "
        "if p.exists() else 0; p.write_text('x' * (n + 1)); sys.exit(3) if n < 2 else "
        "time.sleep(60)"
    )
    completed = supervise(tmp_path, web="import time; time.sleep(3)", worker=worker)
    assert completed.stdout.count("worker exited (code 3) on its own; started again") == 2
    assert starts(tmp_path, "worker") == 3
    assert starts(tmp_path, "web") == 1  # never stopped by the worker's crashes
    assert "web exited (code 0) on its own; not restarted" in completed.stdout
    assert completed.returncode == 1


def test_a_worker_that_keeps_crashing_stops_the_stack(tmp_path):
    completed = supervise(tmp_path, web="import time; time.sleep(60)", worker="raise SystemExit(2)")
    assert completed.stdout.count("started again") == 3
    assert "worker exited 4 times within 60 s" in completed.stdout
    assert "Stopping (worker exited)" in completed.stdout
    assert starts(tmp_path, "worker") == 4
    assert completed.returncode == 1


def test_the_web_exiting_stops_the_stack_without_a_restart(tmp_path):
    completed = supervise(tmp_path, web="raise SystemExit(4)", worker="import time; time.sleep(60)")
    assert "web exited (code 4) on its own; not restarted" in completed.stdout
    assert "started again" not in completed.stdout
    assert starts(tmp_path, "web") == 1
    assert completed.returncode == 1
