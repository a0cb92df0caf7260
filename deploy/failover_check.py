"""Failover check: two app hosts behind HAProxy, one SIGKILLed under a write load (issue 9).

    .venv/bin/python deploy/failover_check.py        (or: make failover-check)

What it does, in order, all on its own throw-away PostgreSQL database and Redis key prefix:
 1. creates and migrates a fresh database; seeds users with balances, tokens and voting power,
    approved models and open proposals through the project's services;
 2. starts two app hosts (gunicorn, production settings, two local ports) and HAProxy with
    deploy/haproxy.cfg, the configuration the README documents;
 3. drives a mixed load through HAProxy from several client threads: register versions,
    record usage, vote, read. No client ever resends a request;
 4. about a third of the way in, SIGKILLs one host's whole process group (gunicorn's master
    and workers, mid-request); keeps the load going on the other; restarts the killed host at
    two thirds and waits until HAProxy sends it traffic again;
 5. stops everything and checks the database: every acknowledged write (a 2xx the client
    received) is there; every write whose answer was lost (502, connection error) is there
    whole or not at all; verify_audit_log passes; every balance equals its ledger, every
    tally its counted votes, every usage counter its execution fees.

The phases advance on what happened (requests each host served, HAProxy's view of the hosts),
never on sleeps, so a slow machine makes the check longer, not flaky. It prints a summary and
exits 1 naming every failure. Processes, the database and the Redis keys are removed whatever
happens (Ctrl-C included).

Settings: FAILOVER_PG_URL (a PostgreSQL server URL, default postgres://postgres@127.0.0.1:5432/
postgres), REDIS_URL (default redis://127.0.0.1:6379/0; keys get their own prefix), and
CELERY_BROKER_URL: when the project has Celery (registry_site/celery.py) and that setting is
set, one `celery -A registry_site worker -B` runs beside the hosts, as in the README.
"""

import argparse
import contextlib
import http.client
import io
import itertools
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
HAPROXY_CONFIG = ROOT / "deploy" / "haproxy.cfg"
# The production gunicorn configuration, once the repository has one; until then the flags
# below. Command-line flags override the file, so --bind and --workers stay this check's.
GUNICORN_CONFIGS = [ROOT / "gunicorn.conf.py", ROOT / "deploy" / "gunicorn.conf.py"]
CELERY_APP_MODULE = ROOT / "registry_site" / "celery.py"

PUBLIC_HOST = "registry.failover.test"
# Clients connect from this loopback address and HAProxy connects to the hosts from
# 127.0.0.1, so the audit trail shows whether the app took the address HAProxy added
# (TRUSTED_PROXY_COUNT=1), the connection's (0) or the client's forged one (2 or more).
CLIENT_ADDRESS = "127.0.0.2"
FORGED_FORWARDED_FOR = "203.0.113.77"
# Rate limits stay on (every request still pays their Redis round trips) but never refuse.
UNTHROTTLED = "100000000/min"
THROTTLES = ["THROTTLE_ANON", "THROTTLE_USER", "THROTTLE_REGISTER", "THROTTLE_USAGE",
             "THROTTLE_VOTE", "THROTTLE_TOKEN_CREATE"]
HOSTS = ("app1", "app2")
VICTIM = "app2"
# Each phase needs this many acknowledged writes from the host that matters before it ends.
WRITES_PER_PHASE = 10
PHASE_TIMEOUT = 180  # seconds; only a broken deployment comes near it
START_TIMEOUT = 90

BALANCE = 10**12
SEEDED_VERSION = "1.0.0"
PROPOSED_VERSION = "1.1.0-rc"
# Durations tag each usage record: unique per request, stored in its audit event and summed
# into the counters, so the check can tell exactly which records exist.
FIRST_DURATION_TAG = 1_000_000


def main() -> int:
    args = parse_args()
    check = FailoverCheck(args)
    previous = {sig: signal.signal(sig, _interrupted) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return check.run()
    except KeyboardInterrupt:
        print("failover check: interrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        check.cleanup()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _interrupted(signum, frame):
    raise KeyboardInterrupt


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=24,
                        help="Least length of the load; the phases may need longer (default 24).")
    parser.add_argument("--clients", type=int, default=6,
                        help="Client threads, one request in flight each (default 6).")
    parser.add_argument("--users", type=int, default=12, help="Seeded users (default 12).")
    parser.add_argument("--workers", type=int, default=2,
                        help="gunicorn workers per app host (default 2).")
    parser.add_argument("--database", default=f"ai_registry_failover_{os.getpid()}",
                        help="Name of the database to create (it must not exist; dropped "
                             "at the end).")
    parser.add_argument("--no-restart", action="store_true",
                        help="Leave the killed host down for the rest of the load.")
    parser.add_argument("--keep-logs", metavar="DIR",
                        help="Copy the hosts' and HAProxy's logs here at the end.")
    args = parser.parse_args()
    if args.clients < 1 or args.users < 2 or args.workers < 1 or args.seconds <= 0:
        parser.error("--clients, --workers >= 1, --users >= 2, --seconds > 0")
    return args


# Processes -----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def group_alive(group: int) -> bool:
    """Whether a live (not zombie) thread of the group is left, from /proc (Linux).

    Threads, not processes: a gthread worker's main thread turns zombie as soon as it exits,
    while its other threads are still tearing down and the listening socket they share is
    still open (so a connect still lands in its queue and is reset a moment later)."""
    for stat in Path("/proc").glob("[0-9]*/task/[0-9]*/stat"):
        try:
            # "tid (comm) state ppid pgrp ..."; comm may hold spaces, so split after it.
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] not in ("Z", "X"):
            return True
    return False


def refuses(address: str) -> bool:
    """Whether a connect to host:port is refused (nothing listens there any more)."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


class Process:
    """A child in its own session, so that killing its process group reaches every worker."""

    def __init__(self, name: str, command: list[str], env: dict, log_path: Path,
                 address: str = ""):
        self.name, self.command, self.env, self.log_path = name, command, env, log_path
        self.address = address
        self.popen = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(self.command, env=self.env, cwd=ROOT, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole group: no worker gets to finish its request. Returns once no
        thread of the group is left and its address refuses connections (until then a
        connect may still land in the listening socket's queue)."""
        group = self.popen.pid
        os.killpg(group, signal.SIGKILL)
        self.popen.wait()
        deadline = time.monotonic() + 30
        while group_alive(group) or (self.address and not refuses(self.address)):
            if time.monotonic() > deadline:
                raise Failed(f"process group {group} of {self.name} survived SIGKILL")
            time.sleep(0.005)

    def stop(self, grace: float = 15) -> None:
        """SIGTERM (gunicorn finishes its requests), then SIGKILL whatever of the group is left."""
        if self.popen is None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(wait)
        self.popen = None

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(f"    {line}" for line in text.splitlines()[-lines:])


class HAProxy(Process):
    def stats(self, socket_path: Path) -> dict[str, dict[str, str]]:
        """`show stat` of the app_hosts backend, per server name; {} when it cannot answer."""
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(2)
                sock.connect(str(socket_path))
                sock.sendall(b"show stat\n")
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
        except OSError:
            return {}
        lines = data.decode(errors="replace").splitlines()
        if not lines or not lines[0].startswith("# "):
            return {}
        header = lines[0][2:].split(",")
        rows = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(","), strict=False))
            if row.get("pxname") == "app_hosts" and row.get("svname") in HOSTS:
                rows[row["svname"]] = row
        return rows


# Seeding -------------------------------------------------------------------------------------

@dataclass
class World:
    """What the seed made, as the clients and the checks need it."""

    tokens: dict[str, str] = field(default_factory=dict)            # username -> secret
    names: dict[str, list[str]] = field(default_factory=dict)       # username -> own names
    approved: list[tuple[str, str]] = field(default_factory=list)   # (name, version)
    proposals: list[int] = field(default_factory=list)
    seeded_registrations: set = field(default_factory=set)
    last_seed_event: int = 0


def seed(users: int) -> World:
    """Users, balances, tokens, voting power, models and proposals, through the services."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from fees_app.services import account_credit
    from governance_app.models import ProposalType
    from governance_app.services import proposal_create, voting_power_grant
    from models_app.models import Registration, Source
    from models_app.services import registration_create, registration_transition
    from registry_site.models import AuditEvent
    from registry_site.roles import MODERATORS_GROUP
    from registry_site.services import token_create

    User = get_user_model()
    world = World()
    moderator = User.objects.create_user("failover-moderator", password=None, is_staff=True)
    moderator.groups.add(Group.objects.get(name=MODERATORS_GROUP))
    people = []
    for i in range(users):
        user = User.objects.create_user(f"failover-user-{i:02d}", password=None)
        account_credit(user=user, amount=BALANCE, actor=moderator, reason="Failover check")
        voting_power_grant(user=user, power=1_000 + 250 * i, actor=moderator,
                           reason="Failover check")
        _, secret = token_create(user=user, scopes=["read", "register", "usage", "vote"],
                                 expires_in=6 * 3600, name="failover check")
        world.tokens[user.username] = secret
        world.names[user.username] = [f"failover-{i:02d}-{kind}" for kind in ("alpha", "beta")]
        people.append(user)
    for user in people:
        for name in world.names[user.username]:
            registration = registration_create(
                owner=user, source=Source.API, name=name, version=SEEDED_VERSION,
                hash=secrets.token_hex(32), size_bytes=50_000, parameter_count=1_000_000,
                description="Seeded by the failover check.")
            registration_transition(registration=registration,
                                    to_status=Registration.Status.APPROVED, actor=moderator,
                                    source=Source.ADMIN, reason="Failover check")
            world.approved.append((name, SEEDED_VERSION))
            world.seeded_registrations.add((name, SEEDED_VERSION))
        # A pending version for each user's proposal: everyone votes on every proposal, the
        # owner's own vote is recorded but not counted.
        name = world.names[user.username][0]
        registration_create(owner=user, source=Source.API, name=name, version=PROPOSED_VERSION,
                            hash=secrets.token_hex(32), size_bytes=60_000,
                            parameter_count=1_000_000)
        world.seeded_registrations.add((name, PROPOSED_VERSION))
        proposal = proposal_create(
            proposer=user, type=ProposalType.MODEL_APPROVAL, title=f"Approve {name}",
            payload={"name": name, "version": PROPOSED_VERSION, "reason": "Failover check"})
        world.proposals.append(proposal.pk)
    world.last_seed_event = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True)[0]
    return world


# The load ------------------------------------------------------------------------------------

@dataclass
class Outcome:
    kind: str                  # register, usage, vote, read
    user: str | None
    request: dict
    started: float
    finished: float = 0.0
    status: int | None = None  # None: no answer at all (connection error)
    served_by: str | None = None
    body: dict | None = None
    error: str = ""

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def lost(self) -> bool:
        """The answer never came: HAProxy's own 502/503/504, or the connection broke."""
        return self.status is None or (self.status in (502, 503, 504) and self.served_by is None)

    @property
    def is_write(self) -> bool:
        return self.kind != "read"


class Load:
    """Client threads, each with one keep-alive connection to HAProxy and one request in
    flight at a time; no request is ever sent twice."""

    def __init__(self, world: World, port: int, clients: int, started: float):
        self.world, self.port, self.clients, self.t0 = world, port, clients, started
        self.lock = threading.Lock()
        self.outcomes: list[Outcome] = []
        self.stop = threading.Event()
        self.versions = itertools.count(1)
        self.tags = itertools.count(FIRST_DURATION_TAG)
        pairs = [(p, u) for p in world.proposals for u in world.tokens]
        random.Random(7).shuffle(pairs)
        self.vote_pairs = pairs
        self.crashes: list[str] = []  # a client thread that died of a bug in this script
        self.threads = [threading.Thread(target=self.guarded_client, args=(i,), daemon=True)
                        for i in range(clients)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(90)

    def now(self) -> float:
        return time.monotonic() - self.t0

    def snapshot(self) -> list[Outcome]:
        with self.lock:
            return list(self.outcomes)

    def acked_writes(self, host: str, since: float = 0.0) -> int:
        with self.lock:
            return sum(1 for o in self.outcomes if o.is_write and o.acknowledged
                       and o.served_by == host and o.started >= since)

    def guarded_client(self, index: int) -> None:
        try:
            self.client(index)
        except Exception as exc:  # noqa: BLE001  (reported as a failure of the check)
            with self.lock:
                self.crashes.append(f"client {index}: {type(exc).__name__}: {exc}")

    def client(self, index: int) -> None:
        rng = random.Random(1000 + index)
        connection = self.connect()
        users = sorted(self.world.tokens)
        while not self.stop.is_set():
            outcome = self.next_request(rng, users)
            if outcome is None:
                continue
            method, path, body, token = outcome.request.pop("_http")
            headers = {"Host": PUBLIC_HOST, "Accept": "application/json",
                       "X-Forwarded-For": FORGED_FORWARDED_FOR}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            payload = None
            if body is not None:
                payload = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            outcome.started = self.now()
            try:
                connection.request(method, path, body=payload, headers=headers)
                response = connection.getresponse()
                raw = response.read()
                outcome.status = response.status
                outcome.served_by = response.getheader("X-Served-By")
                try:
                    outcome.body = json.loads(raw) if raw else None
                except ValueError:
                    outcome.body = {"raw": raw[:300].decode(errors="replace")}
                if response.will_close:
                    connection.close()
            except (OSError, http.client.HTTPException) as exc:
                outcome.error = f"{type(exc).__name__}: {exc}"
                connection.close()
                connection = self.connect()
            outcome.finished = self.now()
            with self.lock:
                self.outcomes.append(outcome)
        connection.close()

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=90,
                                          source_address=(CLIENT_ADDRESS, 0))

    def next_request(self, rng: random.Random, users: list[str]) -> Outcome | None:
        kind = rng.choices(["usage", "register", "vote", "read"], [45, 20, 15, 20])[0]
        user = rng.choice(users)
        token = self.world.tokens[user]
        if kind == "vote":
            with self.lock:
                pair = self.vote_pairs.pop() if self.vote_pairs else None
            if pair is None:
                kind = "usage"
            else:
                proposal, user = pair
                choice = rng.choice(["for", "for", "against", "abstain"])
                return Outcome("vote", user, {
                    "proposal": proposal, "choice": choice,
                    "_http": ("POST", f"/api/v1/proposals/{proposal}/vote/",
                              {"choice": choice}, self.world.tokens[user])}, self.now())
        if kind == "usage":
            name, version = rng.choice(self.world.approved)
            with self.lock:
                tag = next(self.tags)
            body = {"version": version, "success": rng.random() < 0.9, "duration_us": tag}
            return Outcome("usage", user, {
                "name": name, "version": version, "tag": tag, "success": body["success"],
                "_http": ("POST", f"/api/v1/models/{name}/usage/", body, token)}, self.now())
        if kind == "register":
            name = rng.choice(self.world.names[user])
            with self.lock:
                version = f"2.{next(self.versions)}.0"
            body = {"name": name, "version": version, "hash": secrets.token_hex(32),
                    "size_bytes": rng.randint(10_000, 90_000), "parameter_count": 1_000_000,
                    "description": "Registered during the failover check."}
            return Outcome("register", user, {
                "name": name, "version": version,
                "_http": ("POST", "/api/v1/models/", body, token)}, self.now())
        if rng.random() < 0.5:
            name, _ = rng.choice(self.world.approved)
            return Outcome("read", None, {"_http": ("GET", f"/api/v1/models/{name}/", None,
                                                    None)}, self.now())
        return Outcome("read", user, {"_http": ("GET", "/api/v1/account/", None, token)},
                       self.now())


# The check -----------------------------------------------------------------------------------

class Failed(Exception):
    pass


class FailoverCheck:
    def __init__(self, args):
        self.args = args
        self.workdir = Path(tempfile.mkdtemp(prefix="air-failover-"))
        self.processes: list[Process] = []
        self.hosts: dict[str, Process] = {}
        self.haproxy: HAProxy | None = None
        self.socket_path = self.workdir / "haproxy.sock"
        self.database_created = False
        self.redis_prefix = f"air-failover-{secrets.token_hex(4)}"
        self.events: list[str] = []
        self.facts: list[str] = []
        self.timings: dict[str, float] = {}
        self.load: Load | None = None
        self.pg_url = self.redis_url = None
        self.kill_time: float | None = None
        self.dead_time: float | None = None
        self.restart_time: float | None = None
        self.haproxy_stats: dict = {}
        self.load_seconds = 0.0
        self.haproxy_port = None

    # Orchestration ---------------------------------------------------------------------------

    def run(self) -> int:
        started = time.monotonic()
        failures = []
        try:
            self.preflight()
            self.prepare_environment()
            self.create_database()
            mark = time.monotonic()
            self.migrate()
            self.timings["migrate"] = time.monotonic() - mark
            mark = time.monotonic()
            world = seed(self.args.users)
            self.timings["seed"] = time.monotonic() - mark
            mark = time.monotonic()
            self.start_deployment()
            self.timings["start"] = time.monotonic() - mark
            mark = time.monotonic()
            outcomes = self.drive(world)
            self.timings["load"] = time.monotonic() - mark
            mark = time.monotonic()
            self.stop_deployment()
            failures = self.verify(world, outcomes)
            self.timings["checks"] = time.monotonic() - mark
        except Failed as exc:
            failures = [str(exc)]
            self.dump_logs()
        self.timings["total"] = time.monotonic() - started
        self.print_summary(failures)
        return 1 if failures else 0

    def preflight(self) -> None:
        haproxy = shutil.which("haproxy") or ("/usr/sbin/haproxy"
                                              if os.access("/usr/sbin/haproxy", os.X_OK) else None)
        if haproxy is None:
            raise Failed("haproxy is not installed (Debian: apt-get install -y haproxy).")
        self.haproxy_binary = haproxy
        self.pg_url = os.environ.get("FAILOVER_PG_URL",
                                     "postgres://postgres@127.0.0.1:5432/postgres")
        self.redis_url = os.environ.get("REDIS_URL", "").strip() or "redis://127.0.0.1:6379/0"
        try:
            import psycopg
            psycopg.connect(self.pg_url, connect_timeout=5).close()
        except Exception as exc:
            raise Failed(f"PostgreSQL at {self.pg_url} does not answer: {exc}") from None
        try:
            import redis
            redis.Redis.from_url(self.redis_url, socket_timeout=5).ping()
        except Exception as exc:
            raise Failed(f"Redis at {self.redis_url} does not answer: {exc}") from None

    def database_url(self) -> str:
        parts = urlsplit(self.pg_url)
        return urlunsplit(parts._replace(path=f"/{self.args.database}"))

    def prepare_environment(self) -> None:
        """Production settings, for this process (seed and checks) and every child alike."""
        env = {
            "DJANGO_SETTINGS_MODULE": "registry_site.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": PUBLIC_HOST,
            # Plain HTTP between the clients and HAProxy here; production terminates TLS there.
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "TRUSTED_PROXY_COUNT": "1",
            "DATABASE_URL": self.database_url(),
            "REDIS_URL": self.redis_url,
            "CACHE_KEY_PREFIX": self.redis_prefix,
            "DJANGO_MEDIA_ROOT": str(self.workdir / "media"),
            "DJANGO_STATIC_ROOT": str(self.workdir / "static"),
            "DJANGO_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            **dict.fromkeys(THROTTLES, UNTHROTTLED),
        }
        os.environ.update(env)
        (self.workdir / "static").mkdir()
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()

    def create_database(self) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.pg_url, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                  [self.args.database]).fetchone()
            if exists:
                raise Failed(f"The database {self.args.database} already exists; the check "
                             "creates its own fresh one. Drop it or pass another --database.")
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.args.database)))
        self.database_created = True

    def migrate(self) -> None:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)

    def host_command(self, port: int) -> list[str]:
        command = [sys.executable, "-m", "gunicorn"]
        config = next((path for path in GUNICORN_CONFIGS if path.exists()), None)
        if config is not None:
            command += ["--config", str(config)]
        return command + ["registry_site.wsgi", "--bind", f"127.0.0.1:{port}",
                          "--workers", str(self.args.workers), "--log-level", "warning",
                          "--graceful-timeout", "10"]

    def start_deployment(self) -> None:
        from django.conf import settings

        env = dict(os.environ)
        ports = {name: free_port() for name in HOSTS}
        for name in HOSTS:
            host = Process(name, self.host_command(ports[name]), env,
                           self.workdir / f"{name}.log", address=f"127.0.0.1:{ports[name]}")
            self.hosts[name] = host
            self.processes.append(host)
            host.start()
        # One worker with an embedded beat for the whole deployment (beat must run once).
        broker = getattr(settings, "CELERY_BROKER_URL", "") or ""
        if broker and CELERY_APP_MODULE.exists():
            worker = Process("celery", [sys.executable, "-m", "celery", "-A", "registry_site",
                                        "worker", "-B", "--loglevel", "WARNING",
                                        "--concurrency", "1", "--schedule",
                                        str(self.workdir / "celerybeat-schedule")],
                             env, self.workdir / "celery.log")
            self.processes.append(worker)
            worker.start()
            self.facts.append(f"celery worker -B on {broker.split('@')[-1]}")
        self.haproxy_port = free_port()
        haproxy_env = {**env,
                       "AIR_LISTEN": f"127.0.0.1:{self.haproxy_port}",
                       "AIR_APP1": self.hosts["app1"].address,
                       "AIR_APP2": self.hosts["app2"].address,
                       "AIR_PUBLIC_HOST": PUBLIC_HOST,
                       "AIR_HAPROXY_SOCKET": str(self.socket_path),
                       "AIR_HAPROXY_LOG": "stdout",
                       "AIR_HAPROXY_LOG_FORMAT": "raw"}
        self.haproxy = HAProxy("haproxy", [self.haproxy_binary, "-db", "-f", str(HAPROXY_CONFIG)],
                               haproxy_env, self.workdir / "haproxy.log")
        self.processes.append(self.haproxy)
        self.haproxy.start()
        self.wait_for(lambda: self.up_hosts() == set(HOSTS), START_TIMEOUT,
                      "HAProxy never saw both app hosts pass the health check")

    def host_states(self) -> dict[str, str]:
        """HAProxy's view of each app host: "UP", "DOWN", or on the way ("UP 1/2", ...)."""
        for process in self.processes:
            if process is not self.hosts.get(VICTIM) and process.popen and not process.running:
                raise Failed(f"{process.name} exited (status {process.popen.returncode}):\n"
                             f"{process.tail()}")
        return {name: row.get("status", "") for name, row in
                self.haproxy.stats(self.socket_path).items()}

    def up_hosts(self) -> set[str]:
        return {name for name, state in self.host_states().items() if state == "UP"}

    def wait_for(self, condition, timeout: float, message: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise Failed(f"{message} within {timeout:.0f} s.")
            time.sleep(0.1)

    def drive(self, world: World) -> list[Outcome]:
        seconds = self.args.seconds
        t0 = time.monotonic()
        self.load = load = Load(world, self.haproxy_port, self.args.clients, t0)
        survivor = next(name for name in HOSTS if name != VICTIM)
        victim = self.hosts[VICTIM]
        load.start()
        try:
            # 1. Both hosts take writes.
            self.wait_for(lambda: load.now() >= seconds / 3
                          and all(load.acked_writes(h) >= WRITES_PER_PHASE for h in HOSTS),
                          PHASE_TIMEOUT, "Both app hosts did not acknowledge writes")
            killed_at = load.now()
            group = victim.popen.pid
            victim.kill()
            self.kill_time, self.dead_time = killed_at, load.now()
            self.events.append(f"{VICTIM} (process group {group}) SIGKILLed at {killed_at:.2f} s"
                               f", every thread of it gone at {self.dead_time:.2f} s")
            # 2. The survivor carries the load, and HAProxy notices the dead host.
            self.wait_for(lambda: self.host_states().get(VICTIM, "").startswith("DOWN"), 30,
                          f"HAProxy did not mark {VICTIM} down")
            self.events.append(f"HAProxy marked {VICTIM} down at {load.now():.1f} s")
            self.wait_for(lambda: load.now() >= seconds * 2 / 3
                          and load.acked_writes(survivor, since=killed_at) >= WRITES_PER_PHASE,
                          PHASE_TIMEOUT, f"{survivor} did not acknowledge writes after the kill")
            if not self.args.no_restart:
                # 3. The killed host comes back and HAProxy sends it traffic again.
                restarted_at = load.now()
                victim.start()
                self.restart_time = restarted_at
                self.events.append(f"{VICTIM} restarted at {restarted_at:.1f} s")
                self.wait_for(lambda: VICTIM in self.up_hosts(), START_TIMEOUT,
                              f"HAProxy did not bring {VICTIM} back after its restart")
                self.events.append(f"{VICTIM} back in rotation at {load.now():.1f} s")
                self.wait_for(lambda: load.now() >= seconds and load.acked_writes(
                    VICTIM, since=restarted_at) >= WRITES_PER_PHASE, PHASE_TIMEOUT,
                    f"{VICTIM} did not acknowledge writes after its restart")
            else:
                self.wait_for(lambda: load.now() >= seconds, PHASE_TIMEOUT, "The load stalled")
        finally:
            load.finish()
        self.haproxy_stats = self.haproxy.stats(self.socket_path)
        self.load_seconds = load.now()
        return load.snapshot()

    def stop_deployment(self) -> None:
        for process in self.processes:
            process.stop()
        self.wait_for(self.database_idle, 30,
                      "Sessions of the stopped hosts stayed open on the database")

    def database_idle(self) -> bool:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                           "current_database() AND pid <> pg_backend_pid()")
            return cursor.fetchone()[0] == 0

    # Verification ----------------------------------------------------------------------------

    def verify(self, world: World, outcomes: list[Outcome]) -> list[str]:
        from django.core.management import call_command, get_commands

        failures = self.check_answers(outcomes)
        # Work the app defers past the request (the audit sealer, batched counters) must be
        # done before the invariants are read: run what beat would run, once, now.
        if "run_scheduled" in get_commands():
            ran = io.StringIO()
            call_command("run_scheduled", stdout=ran)
            self.facts.append("run_scheduled before the checks: "
                              + "; ".join(ran.getvalue().strip().splitlines()))
        failures += check_database(world, outcomes, self.facts)
        result = subprocess.run([sys.executable, "manage.py", "verify_audit_log"], cwd=ROOT,
                                env=dict(os.environ), capture_output=True, text=True)
        output = (result.stdout + result.stderr).strip()
        if result.returncode != 0:
            failures.append(f"verify_audit_log failed:\n{output}")
        else:
            self.facts.append(f"verify_audit_log: {output.splitlines()[-1]}")
        return failures

    def check_answers(self, outcomes: list[Outcome]) -> list[str]:
        failures = [f"the load generator broke: {crash}" for crash in self.load.crashes]
        unexpected = [o for o in outcomes if not o.acknowledged and not o.lost]
        if unexpected:
            sample = "\n".join(f"    {o.kind} {o.request} -> {o.status} from {o.served_by}: "
                               f"{str(o.body)[:300]}" for o in unexpected[:10])
            failures.append(f"{len(unexpected)} answer(s) neither 2xx nor a lost answer:\n"
                            f"{sample}")
        lost = [o for o in outcomes if o.lost]
        # Only a request in flight while the killed host died may lose its answer (so at most
        # one per client, give or take the few milliseconds the kernel takes to end the
        # group): before the kill nothing fails, and once no process of the host is left its
        # connects are refused and HAProxy retries them on the other host.
        stray = [o for o in lost if self.kill_time is None
                 or not (o.started <= self.dead_time and o.finished >= self.kill_time)]
        if stray:
            failures.append("answers lost for requests not in flight at the kill: " + "; ".join(
                f"{o.kind} {o.started:.2f}-{o.finished:.2f} s: {o.status or o.error}"
                for o in stray[:10]))
        down_until = self.restart_time if self.restart_time is not None else float("inf")
        ghost = [o for o in outcomes if o.served_by == VICTIM and self.kill_time is not None
                 and self.kill_time < o.started and o.finished < down_until]
        if ghost:
            failures.append(f"{len(ghost)} request(s) answered by {VICTIM} while it was dead.")
        return failures

    # Reporting -------------------------------------------------------------------------------

    def print_summary(self, failures: list[str]) -> None:
        outcomes = self.load.snapshot() if self.load else []
        verdict = "FAILED" if failures else "passed"
        timing = ", ".join(f"{k} {v:.0f} s" for k, v in self.timings.items() if k != "total")
        print(f"\nFailover check {verdict} in {self.timings.get('total', 0):.0f} s ({timing}).")
        if self.hosts:
            hosts = ", ".join(f"{n} {h.address}" for n, h in self.hosts.items())
            print(f"  deployment: {hosts}; HAProxy 127.0.0.1:{self.haproxy_port}"
                  f"; database {self.args.database}; {self.args.workers} gunicorn workers each")
        if outcomes:
            print(f"  load: {self.args.clients} client threads for "
                  f"{self.load_seconds:.1f} s, {len(outcomes)} requests")
            for event in self.events:
                print(f"    {event}")
            by_status = Counter((o.kind, o.status if o.status is not None else "no answer")
                                for o in outcomes)
            kinds = sorted({k for k, _ in by_status})
            for kind in kinds:
                parts = ", ".join(f"{status}: {n}" for (k, status), n in
                                  sorted(by_status.items(), key=str) if k == kind)
                print(f"    {kind:8} {parts}")
            print("    answered by: " + ", ".join(self.served_by_phase(outcomes)))
            lost = [o for o in outcomes if o.lost]
            in_flight = [o for o in outcomes if o.started <= (self.kill_time or -1)
                         <= o.finished]
            print(f"    lost answers: {len(lost)} (requests in flight at the kill: "
                  f"{len(in_flight)})")
            for o in lost[:12]:
                answer = f"{o.status} from HAProxy" if o.status else o.error
                print(f"      {o.kind} sent at {o.started:.2f} s, {answer} at {o.finished:.2f} s")
        stats = self.haproxy_stats
        if stats:
            print("  HAProxy: " + ", ".join(
                f"{name} retries {row.get('wretr', '?')} redispatches {row.get('wredis', '?')}"
                for name, row in sorted(stats.items()) if name in HOSTS))
        for fact in self.facts:
            print(f"  {fact}")
        if failures:
            print("\nFAILED:")
            for failure in failures:
                print(f"  - {failure}")

    def served_by_phase(self, outcomes: list[Outcome]) -> list[str]:
        kill = self.kill_time
        restart = self.restart_time
        phases = [("before the kill", lambda o: kill is None or o.started < kill)]
        if kill is not None:
            phases.append(("while down", lambda o: o.started >= kill
                           and (restart is None or o.started < restart)))
        if restart is not None:
            phases.append(("after the restart", lambda o: o.started >= restart))
        parts = []
        for label, test in phases:
            counts = Counter(o.served_by or "HAProxy" for o in outcomes if test(o))
            parts.append(f"{label} " + " ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        return parts

    def dump_logs(self) -> None:
        for process in self.processes:
            tail = process.tail()
            if tail:
                print(f"--- {process.name} log (last lines) ---\n{tail}", file=sys.stderr)

    def cleanup(self) -> None:
        """Always: every process, the database, the Redis keys, the work directory."""
        for process in reversed(self.processes):
            try:
                process.stop(grace=5)
            except Exception as exc:  # noqa: BLE001  (cleanup goes on)
                print(f"cleanup: stopping {process.name}: {exc}", file=sys.stderr)
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001, S110  (Django may never have been set up)
            pass
        if self.database_created:
            try:
                import psycopg
                from psycopg import sql

                with psycopg.connect(self.pg_url, autocommit=True) as conn:
                    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                                 .format(sql.Identifier(self.args.database)))
            except Exception as exc:  # noqa: BLE001
                print(f"cleanup: could not drop {self.args.database}: {exc}", file=sys.stderr)
        try:
            import redis

            if self.redis_url is None:
                raise LookupError("never configured")
            client = redis.Redis.from_url(self.redis_url, socket_timeout=5)
            keys = list(client.scan_iter(match=f"{self.redis_prefix}:*", count=1000))
            for start in range(0, len(keys), 500):
                client.delete(*keys[start:start + 500])
        except Exception as exc:  # noqa: BLE001
            print(f"cleanup: Redis keys {self.redis_prefix}:*: {exc}", file=sys.stderr)
        if self.args.keep_logs:
            target = Path(self.args.keep_logs)
            target.mkdir(parents=True, exist_ok=True)
            for log in self.workdir.glob("*.log"):
                shutil.copy(log, target / log.name)
        shutil.rmtree(self.workdir, ignore_errors=True)


# The database checks -------------------------------------------------------------------------

def check_database(world: World, outcomes: list[Outcome], facts: list[str]) -> list[str]:
    """Every acknowledged write present, every lost one whole or absent, every invariant."""
    failures: list[str] = []
    failures += check_registrations(world, outcomes, facts)
    failures += check_usage(world, outcomes, facts)
    failures += check_votes(world, outcomes, facts)
    failures += check_ledgers(facts)
    failures += check_audit_addresses(world)
    return failures


def _sample(items, limit: int = 8) -> str:
    items = list(items)
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return "; ".join(str(i) for i in items[:limit]) + more


def check_registrations(world: World, outcomes: list[Outcome], facts: list[str]) -> list[str]:
    from fees_app.models import FeeType, LedgerEntry
    from models_app.models import Registration, StatusChange, UsageStats
    from registry_site.models import AuditEvent

    failures = []
    registrations = {(r.name, r.version): r for r in Registration.objects.select_related("owner")}
    fees = defaultdict(list)
    for entry in LedgerEntry.objects.filter(
            fee_type__in=[FeeType.REGISTRATION, FeeType.UPDATE]).select_related("account"):
        fees[(entry.model_name, entry.model_version)].append(entry)
    usage_rows = set(UsageStats.objects.values_list("pk", flat=True))
    first_status = set(StatusChange.objects.filter(from_status="")
                       .values_list("registration_id", flat=True))
    audited = Counter(AuditEvent.objects.filter(action="model.registered")
                      .values_list("target_id", flat=True))

    def parts(key):
        registration = registrations.get(key)
        return {
            "registration": registration is not None,
            "fee": bool(fees.get(key)),
            "usage counters": registration is not None and registration.pk in usage_rows,
            "status history": registration is not None and registration.pk in first_status,
            "audit event": registration is not None and audited[str(registration.pk)] > 0,
        }

    sent = {}
    acked = lost_present = lost_absent = 0
    for o in outcomes:
        if o.kind != "register":
            continue
        key = (o.request["name"], o.request["version"])
        sent[key] = o
        found = parts(key)
        if o.acknowledged:
            acked += 1
            missing = [k for k, v in found.items() if not v]
            if missing:
                failures.append(f"acknowledged registration {key} lacks: {', '.join(missing)}")
            elif registrations[key].registration_fee != o.body.get("registration_fee"):
                failures.append(f"registration {key}: fee {registrations[key].registration_fee}"
                                f" stored, {o.body.get('registration_fee')} acknowledged")
        elif o.lost:
            if all(found.values()):
                lost_present += 1
            elif not any(found.values()):
                lost_absent += 1
            else:
                failures.append(f"registration {key} whose answer was lost is partial: {found}")
    unsent = set(registrations) - set(sent) - world.seeded_registrations
    if unsent:
        failures.append(f"registrations nobody sent: {_sample(sorted(unsent))}")
    # Globally: one fee per registration, of its recorded amount, paid by its owner; no fee
    # without a registration.
    for key, registration in registrations.items():
        entries = fees.get(key, [])
        if (len(entries) != 1 or entries[0].amount != registration.registration_fee
                or entries[0].account.user_id != registration.owner_id):
            paid = [(e.amount, e.account.user_id) for e in entries]
            failures.append(f"registration {key}: fee {registration.registration_fee} by "
                            f"user {registration.owner_id}, ledger (amount, user): {paid}")
    orphans = set(fees) - set(registrations)
    if orphans:
        failures.append(f"registration fees without a registration: {_sample(sorted(orphans))}")
    twice = [k for k, n in audited.items() if n != 1]
    if twice or len(audited) != len(registrations):
        failures.append(f"model.registered events: {len(audited)} targets for "
                        f"{len(registrations)} registrations (repeated: {_sample(twice)})")
    facts.append(f"registrations: {acked} acknowledged present, lost answers {lost_present} "
                 f"present / {lost_absent} absent; {len(registrations)} in all, one fee each")
    return failures


def check_usage(world: World, outcomes: list[Outcome], facts: list[str]) -> list[str]:
    from fees_app.models import FeeType, LedgerEntry
    from models_app.models import ModelUser, Registration, UsageStats
    from registry_site.models import AuditEvent

    failures = []
    registrations = {r.pk: r for r in Registration.objects.all()}
    by_key = {(r.name, r.version): r for r in registrations.values()}
    events = list(AuditEvent.objects.filter(action="model.usage_recorded")
                  .values_list("actor_id", "target_id", "details"))
    tags = Counter(details["duration_us"] for _, _, details in events)
    entries = list(LedgerEntry.objects.filter(fee_type=FeeType.EXECUTION)
                   .values_list("account__user_id", "model_name", "model_version", "amount",
                                "balance_after"))
    receipts = {(user, name, version, amount, after)
                for user, name, version, amount, after in entries}
    user_ids = dict(get_user_ids(world))

    sent = set()
    acked = lost_present = lost_absent = 0
    for o in outcomes:
        if o.kind != "usage":
            continue
        tag = o.request["tag"]
        sent.add(tag)
        if o.acknowledged:
            acked += 1
            receipt = (user_ids[o.user], o.request["name"], o.request["version"],
                       o.body.get("fee"), o.body.get("balance"))
            if tags[tag] != 1:
                failures.append(f"acknowledged usage {tag} has {tags[tag]} audit events")
            if receipt not in receipts:
                failures.append(f"acknowledged usage {tag}: no execution fee {receipt}")
        elif o.lost:
            if tags[tag]:
                lost_present += 1
            else:
                lost_absent += 1
    extra = set(tags) - sent
    if extra:
        failures.append(f"usage records nobody sent: {_sample(sorted(extra))}")
    repeated = [t for t, n in tags.items() if n > 1]
    if repeated:
        failures.append(f"usage records recorded twice: {_sample(repeated)}")

    # Per user and version: as many execution fees as usage records, so no lost answer left a
    # fee without its record or a record without its fee.
    fee_count = Counter((user, name, version) for user, name, version, _, _ in entries)
    record_count = Counter()
    per_version = defaultdict(lambda: Counter())
    for actor, target, details in events:
        registration = registrations[int(target)]
        record_count[(actor, registration.name, registration.version)] += 1
        counts = per_version[registration.pk]
        counts["total_executions"] += 1
        counts["successful_executions" if details["success"] else "failed_executions"] += 1
        counts["total_duration_us"] += details["duration_us"]
    if fee_count != record_count:
        diff = {k: (fee_count[k], record_count[k]) for k in set(fee_count) | set(record_count)
                if fee_count[k] != record_count[k]}
        failures.append(f"execution fees vs usage records (user, name, version): "
                        f"{_sample(diff.items())}")
    fees_by_version = Counter()
    users_by_version = defaultdict(set)
    for user, name, version, amount, _ in entries:
        registration = by_key.get((name, version))
        if registration is None:
            failures.append(f"execution fee for {name} {version}, which is not registered")
            continue
        pk = registration.pk
        fees_by_version[pk] += amount
        users_by_version[pk].add(user)
    model_users = Counter(ModelUser.objects.values_list("registration_id", flat=True))
    fields = ["total_executions", "successful_executions", "failed_executions",
              "total_duration_us"]
    for stats in UsageStats.objects.all():
        expected = {name: per_version[stats.pk][name] for name in fields}
        expected["total_fees_collected"] = fees_by_version[stats.pk]
        expected["unique_users"] = len(users_by_version[stats.pk])
        actual = {name: getattr(stats, name) for name in expected}
        if actual != expected or model_users[stats.pk] != expected["unique_users"]:
            failures.append(f"usage counters of {registrations[stats.pk]}: {actual}, the "
                            f"ledger and audit trail say {expected} "
                            f"({model_users[stats.pk]} user rows)")
    facts.append(f"usage: {acked} acknowledged present, lost answers {lost_present} present / "
                 f"{lost_absent} absent; {len(entries)} execution fees = {len(events)} records "
                 "= the counters")
    return failures


def get_user_ids(world: World):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(username__in=world.tokens).values_list("username",
                                                                                   "pk")


def check_votes(world: World, outcomes: list[Outcome], facts: list[str]) -> list[str]:
    from governance_app.models import Proposal, Vote
    from registry_site.models import AuditEvent

    failures = []
    user_ids = dict(get_user_ids(world))
    votes = {(v.proposal_id, v.voter_id): v for v in Vote.objects.all()}
    audited = Counter((int(target), actor) for target, actor in AuditEvent.objects.filter(
        action="proposal.voted").values_list("target_id", "actor_id"))
    if set(audited) != set(votes) or any(n != 1 for n in audited.values()):
        failures.append("votes and their audit events differ: "
                        f"{_sample(set(audited) ^ set(votes))}")
    sent = set()
    acked = lost_present = lost_absent = 0
    for o in outcomes:
        if o.kind != "vote":
            continue
        key = (o.request["proposal"], user_ids[o.user])
        sent.add(key)
        vote = votes.get(key)
        if o.acknowledged:
            acked += 1
            if vote is None or vote.choice != o.request["choice"] \
                    or vote.weight != o.body.get("weight"):
                failures.append(f"acknowledged vote {key} {o.request['choice']}: stored {vote}")
        elif o.lost:
            if vote is not None:
                lost_present += 1
            else:
                lost_absent += 1
    unsent = set(votes) - sent
    if unsent:
        failures.append(f"votes nobody sent: {_sample(unsent)}")
    tallies = defaultdict(Counter)
    for vote in votes.values():
        if vote.counted:
            tallies[vote.proposal_id][vote.choice] += vote.weight
    for proposal in Proposal.objects.all():
        stored = {"for": proposal.votes_for, "against": proposal.votes_against,
                  "abstain": proposal.votes_abstain}
        counted = {choice: tallies[proposal.pk][choice] for choice in stored}
        if stored != counted:
            failures.append(f"proposal #{proposal.pk} tallies {stored}, counted votes {counted}")
    uncounted = sum(1 for v in votes.values() if not v.counted)
    facts.append(f"votes: {acked} acknowledged present, lost answers {lost_present} present / "
                 f"{lost_absent} absent; {len(votes)} votes ({uncounted} owners' uncounted) "
                 f"= the tallies of {len(world.proposals)} proposals")
    return failures


def check_ledgers(facts: list[str]) -> list[str]:
    """Each balance is the sum of its entries, and each entry's balance_after is the running
    sum in the order the account's row lock admitted them (id order)."""
    from fees_app.models import Account, LedgerEntry

    failures = []
    running = defaultdict(int)
    broken = set()
    entries = 0
    for account_id, kind, amount, after, pk in LedgerEntry.objects.order_by("pk").values_list(
            "account_id", "kind", "amount", "balance_after", "pk"):
        entries += 1
        running[account_id] += amount if kind == LedgerEntry.Kind.CREDIT else -amount
        if running[account_id] != after and account_id not in broken:
            broken.add(account_id)
            failures.append(f"ledger entry {pk} of account {account_id}: balance_after {after}, "
                            f"running sum {running[account_id]}")
    accounts = 0
    for account in Account.objects.all():
        accounts += 1
        if account.balance != running[account.pk]:
            failures.append(f"account {account.pk} ({account.user_id}): balance "
                            f"{account.balance}, ledger sum {running[account.pk]}")
    facts.append(f"ledgers: {accounts} balances = the sums of {entries} entries")
    return failures


def check_audit_addresses(world: World) -> list[str]:
    """Events written through HAProxy carry the client's address as HAProxy saw it."""
    from registry_site.models import AuditEvent

    addresses = Counter(AuditEvent.objects.filter(pk__gt=world.last_seed_event)
                        .exclude(actor=None).values_list("ip", flat=True))
    wrong = {ip: n for ip, n in addresses.items() if ip != CLIENT_ADDRESS}
    if wrong:
        return [f"audit events from the load name client addresses {wrong}, expected only "
                f"{CLIENT_ADDRESS} (X-Forwarded-For with TRUSTED_PROXY_COUNT=1)"]
    return []


if __name__ == "__main__":
    sys.exit(main())
