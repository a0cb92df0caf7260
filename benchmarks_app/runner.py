"""The moving parts of a benchmark run: Redis, gunicorn, wrk, CPU meters, the lock sampler."""

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Throttles stay on (their Redis round trips are part of every request) but never refuse.
UNTHROTTLED = "1000000000/min"
THROTTLE_SETTINGS = ["THROTTLE_ANON", "THROTTLE_USER", "THROTTLE_TOKEN_CREATE",
                     "THROTTLE_REGISTER", "THROTTLE_USAGE", "THROTTLE_VOTE"]
POSTGRES_HELPERS = ("walwriter", "checkpointer", "background writer")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def proc_times(pid: int) -> tuple[int, int] | None:
    """(own utime+stime, reaped children's cutime+cstime) in clock ticks, None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            raw = stat.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def children_of(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                raw = stat.read()
        except OSError:
            continue
        if int(raw[raw.rindex(")") + 2:].split()[1]) == parent:
            found.append(int(entry))
    return found


def tree_seconds(root: int) -> float:
    """CPU seconds of a process and its children, the exited ones included (cutime)."""
    own = proc_times(root)
    if own is None:
        return 0.0
    total = own[0] + own[1]
    for child in children_of(root):
        times = proc_times(child)
        if times:
            total += times[0]
    return total / CLOCK_TICKS


class Process:
    """A child process in its own session, stopped with SIGTERM then SIGKILL."""

    def __init__(self, command, *, env=None, cwd=None, log=None):
        self.log = log
        self.popen = subprocess.Popen(command, env=env, cwd=cwd, stdout=log or subprocess.DEVNULL,
                                      stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        if not self.alive():
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


def start_redis(log) -> tuple[Process, str]:
    port = free_port()
    redis = Process([shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
                     "--save", "", "--appendonly", "no", "--protected-mode", "no"], log=log)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return redis, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.1)
    redis.stop()
    raise RuntimeError("redis-server did not answer PING within 10 s")


@dataclass
class Server:
    process: Process
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def server_env(*, database_url: str, redis_url: str, workers: int, worker_class: str,
               threads: int, port: int) -> dict:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "registry_site.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_LOG_LEVEL": "WARNING",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        # As in production: a worker and beat seal the audit trail and fold counters, so a
        # request does not seal in-process after its commit (what happens without a broker).
        "CELERY_BROKER_URL": redis_url.rsplit("/", 1)[0] + "/1",
        "BENCH_QUERY_COUNT": "1",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_WORKER_CLASS": worker_class,
        "GUNICORN_THREADS": str(threads),
        "GUNICORN_LOG_LEVEL": "warning",
        "GUNICORN_ACCESS_LOG": "",
    }
    env.update(dict.fromkeys(THROTTLE_SETTINGS, UNTHROTTLED))
    return env


def start_gunicorn(base_dir: Path, env: dict, port: int, log) -> Server:
    process = Process([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
                       "registry_site.wsgi"], env=env, cwd=base_dir, log=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not process.alive():
            raise RuntimeError("gunicorn exited at start (see its log)")
        try:
            if get(f"http://127.0.0.1:{port}/healthz")[0] == 200:
                return Server(process, port)
        except OSError:
            pass
        time.sleep(0.3)
    process.stop()
    raise RuntimeError("gunicorn did not answer /healthz within 60 s")


def start_worker(base_dir: Path, env: dict, log) -> Process:
    """One Celery worker with beat, as `make worker` runs it, on the bench's own Redis."""
    worker = Process([sys.executable, "-m", "celery", "-A", "registry_site", "worker", "-B",
                      "--pool", "solo", "--loglevel", "WARNING"], env=env, cwd=base_dir, log=log)
    time.sleep(2)
    if not worker.alive():
        raise RuntimeError("the Celery worker exited at start (see its log)")
    return worker


def get(url: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"X-Forwarded-Proto": "https",
                                                   "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def follow_next(server: Server, path: str, times: int) -> str:
    """The path reached from ``path`` by following ``next`` up to ``times`` times."""
    for _ in range(times):
        status, body = get(server.base + path)
        if status != 200:
            raise RuntimeError(f"{path} answered {status} while following next links")
        link = json.loads(body).get("next")
        if not link:
            break
        path = re.sub(r"^https?://[^/]+", "", link)
    return path


class PostgresMeter:
    """CPU of the bench database's backends and the cluster's writer processes.

    Backends come and go (and autovacuum workers), so the set is polled; a backend's share is
    its CPU when last seen minus its CPU when first seen (0 when it appeared in the window).
    """

    def __init__(self, dsn: str, database: str):
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.database = database
        self.first: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.stopping = threading.Event()
        self.thread = None

    def pids(self) -> list[int]:
        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE (datname = %s AND pid <> pg_backend_pid()"
            " AND application_name <> 'ai-registry-bench') OR backend_type = ANY(%s)",
            [self.database, list(POSTGRES_HELPERS)]).fetchall()
        return [row[0] for row in rows]

    def poll(self, *, initial: bool = False) -> None:
        for pid in self.pids():
            times = proc_times(pid)
            if times is None:
                continue
            self.first.setdefault(pid, times[0] if initial else 0)
            self.last[pid] = times[0]

    def start(self) -> None:
        self.first, self.last = {}, {}
        self.stopping.clear()
        self.poll(initial=True)
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stopping.wait(0.25):
            self.poll()

    def stop(self) -> float:
        self.stopping.set()
        self.thread.join()
        self.poll()
        return sum(self.last[pid] - self.first[pid] for pid in self.last) / CLOCK_TICKS

    def close(self) -> None:
        self.conn.close()


LOCK_QUERY = """
SELECT a.pid, pg_blocking_pids(a.pid), l.locktype, l.mode, l.relation::regclass::text,
       left(regexp_replace(a.query, '\\s+', ' ', 'g'), 300)
FROM pg_stat_activity a
LEFT JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted
WHERE a.datname = %s AND a.pid <> pg_backend_pid() AND a.wait_event_type = 'Lock'
"""
TABLE_IN_QUERY = re.compile(r'(?:FROM|UPDATE|INTO)\s+"?(\w+)"?', re.IGNORECASE)


@dataclass
class LockReport:
    samples: int = 0
    samples_waiting: int = 0
    waits: dict = field(default_factory=dict)  # "what" -> samples

    def as_dict(self) -> dict:
        share = self.samples_waiting / self.samples if self.samples else 0.0
        return {"samples": self.samples, "samples_with_a_wait": self.samples_waiting,
                "share": round(share, 4),
                "on": [{"what": what, "samples": n} for what, n in
                       sorted(self.waits.items(), key=lambda item: -item[1])]}


class LockSampler:
    """Every ``interval`` s: is a request of the bench database waiting on another's lock?

    Every write in flight comes from a distinct user (Context), so any such wait is one
    user's request waiting on another user's transaction.
    """

    def __init__(self, dsn: str, database: str, interval: float = 0.02):
        self.dsn, self.database, self.interval = dsn, database, interval
        self.report = LockReport()
        self.stopping = threading.Event()
        self.thread = None

    def start(self) -> None:
        self.report = LockReport()
        self.stopping.clear()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True,
                             application_name="ai-registry-bench") as conn:
            while not self.stopping.wait(self.interval):
                rows = conn.execute(LOCK_QUERY, [self.database]).fetchall()
                self.report.samples += 1
                blocked = [row for row in rows if row[1]]
                if not blocked:
                    continue
                self.report.samples_waiting += 1
                for _pid, _blockers, locktype, mode, relation, query in blocked:
                    table = relation or next(iter(TABLE_IN_QUERY.findall(query or "")), "?")
                    words = (query or "").split()
                    # The verb and the end ("... FOR UPDATE"): what kind of wait it is.
                    words = " ".join(words if len(words) <= 8 else
                                     [*words[:2], "...", *words[-4:]])
                    what = f"{table} ({locktype or '?'} {mode or ''}): {words}".strip()
                    self.report.waits[what] = self.report.waits.get(what, 0) + 1

    def stop(self) -> LockReport:
        self.stopping.set()
        self.thread.join()
        return self.report


def run_wrk(*, url: str, script: Path, prefix: str, threads: int, connections: int,
            seconds: float) -> dict:
    command = [shutil.which("wrk"), f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s",
               "--timeout", "10s", "-s", str(script), url, "--", prefix]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            return json.loads(line[len("WRK_JSON "):])
    raise RuntimeError(f"wrk printed no result (exit {done.returncode}):\n"
                       f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
