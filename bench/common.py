"""Shared pieces of the benchmarks: a PostgreSQL database of their own, a server, percentiles, results."""

import json
import os
import platform
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_and_name(url: str) -> tuple[str, str]:
    """The URL of the server's `postgres` database, to create or drop the database ``url`` names."""
    parsed = urlparse(url)
    return parsed._replace(path="/postgres").geturl(), parsed.path.lstrip("/")


def ensure_database(url: str) -> None:
    """Create the benchmark's own PostgreSQL database if it is missing."""
    import psycopg

    admin, name = _server_and_name(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def fresh_database(url: str) -> None:
    """Drop and create the benchmark's own PostgreSQL database, so no run sees another's rows."""
    import psycopg

    admin, name = _server_and_name(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def production_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DR_", "CELERY_"))}
    env.update(
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="bench-only-" + "x" * 60,
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DR_SECRET_KEY="sk_test_bench",
        DR_WEBHOOK_SECRETS="whsec_bench_secret",
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def manage(*args, env) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True)


def migrated_database(url: str, *, static: bool = False, **extra) -> dict:
    """The production environment (``production_env``) on the benchmark's database ``url``, created
    if missing and migrated; ``static`` also collects the files production settings serve."""
    ensure_database(url)
    env = production_env(DATABASE_URL=url, **extra)
    manage("migrate", "--noinput", env=env)
    if static:
        manage("collectstatic", "--noinput", env=env)
    return env


class Gunicorn:
    def __init__(
        self,
        *,
        env: dict,
        workers: int,
        threads: int,
        port: int | None = None,
        app: str = "bench.wsgi:application",
        output=None,
    ):
        self.port = port or free_port()
        self.env = env
        self.output = output
        self.args = [
            PYTHON, "-m", "gunicorn", app,
            "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(workers),
            "--worker-class", "gthread",
            "--threads", str(threads),
            "--log-level", "warning",
        ]  # fmt: skip
        self.process = None

    def __enter__(self):
        self.process = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=self.output, stderr=self.output)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not start")

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(timeout=20)


def process_table() -> dict[int, tuple[int, float]]:
    """Each process's parent and CPU seconds (user + system, plus those of its children it has
    reaped), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone since the listing
        # After the name: state, ppid, ... utime, stime, cutime, cstime are fields 14 to 17 of stat(5).
        table[int(entry.name)] = (int(fields[1]), sum(int(value) for value in fields[11:15]) / ticks)
    return table


def tree_cpu_seconds(table: dict[int, tuple[int, float]], roots: list[int]) -> float:
    """CPU seconds of the processes ``roots`` and all their descendants."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, list(roots)
    while todo:
        pid = todo.pop()
        total += table[pid][1] if pid in table else 0.0
        todo.extend(children.get(pid, []))
    return total


def wait_for(what: str, done, timeout: float = 60.0, *, poll: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return
        time.sleep(poll)
    raise RuntimeError(f"gave up waiting for {what}")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def machine() -> str:
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return f"{platform.machine()}, {os.cpu_count()} cores, {python}"


def python_loop_seconds() -> float:
    """CPU seconds for ten million Python additions, best of three: machines of one description
    (same cores, same CPython) differ by twice in speed, and this says which one a result is from."""
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        total = 0
        for number in range(10_000_000):
            total += number
        best = min(best, time.process_time() - started)
    return round(best, 2)


def write_result(name: str, figures: dict, *, script: str | None = None) -> Path:
    """``script``: the benchmark's own name when it writes results under another (one per scenario)."""
    RESULTS.mkdir(exist_ok=True)
    command = "python " + " ".join(shlex.quote(arg) for arg in [f"bench/{script or name}.py", *sys.argv[1:]])
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    payload = {
        "benchmark": name,
        "command": command,
        "machine": machine(),
        "python_loop_seconds": python_loop_seconds(),
        "at": at,
        **figures,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nreproduce: {command}\nwritten: {path.relative_to(ROOT)}")
    return path
