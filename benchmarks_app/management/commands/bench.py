"""``make bench``: seed a bench database, start the production server, load it with wrk.

Everything runs on its own resources: a PostgreSQL database per size (never the registry's;
its name must contain "bench"), a redis-server started for the run (so its CPU is the run's
alone), gunicorn with gunicorn.conf.py and DEBUG off. Speed is measured here, never in tests.
"""

import contextlib
import datetime
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from benchmarks_app import report, runner
from benchmarks_app.report import Round, Row
from benchmarks_app.scenarios import BY_NAME, READS, Context, request_lines
from benchmarks_app.seed import OPEN_TITLE, SEARCH_WORDS, WRITERS, bench_secret, writer_model

DEFAULT_MODELS = 100_000
QUICK_MODELS = 10_000
# Writes per second the request files are sized for; faster than this, writes would repeat.
MAX_WRITE_RATE = 2000
READ_LINES = 2000
# Distinct model names the reads go round (at most): with --compare, the same number at both
# sizes (the smaller one may approve fewer), since each name's first read, and again each
# time its cached answer expires, costs a query.
READ_NAMES = 2000
WRK_SCRIPT = Path(settings.BASE_DIR) / "bench" / "wrk" / "scenario.lua"


def parse_sizes(raw: str) -> tuple[int, int]:
    try:
        sizes = [int(part) for part in raw.split(",")]
    except ValueError:
        raise CommandError(f"--compare takes two model counts such as 1000,100000, "
                           f"got {raw!r}.") from None
    if len(sizes) != 2 or min(sizes) < 1 or sizes[0] == sizes[1]:
        raise CommandError(f"--compare takes two different positive model counts such as "
                           f"1000,100000, got {raw!r}.")
    return min(sizes), max(sizes)


def _given(value, default):
    """The option's value when given (0 included, so that it is refused), else the default."""
    return default if value is None else value


def check_options(options) -> dict:
    """The run's settings from the options; CommandError for any bad combination."""
    quick = options["quick"]
    plan = {
        "models": _given(options["models"], QUICK_MODELS if quick else DEFAULT_MODELS),
        "duration": _given(options["duration"], 5.0 if quick else 20.0),
        "warmup": options["warmup"] if options["warmup"] is not None else (1.0 if quick else 3.0),
        "rounds": options["rounds"], "threads": options["threads"],
        "connections": options["connections"], "workers": options["workers"],
        "worker_class": options["worker_class"], "worker_threads": options["worker_threads"],
        "prefix": options["database_prefix"], "compare": None,
    }
    if plan["models"] < 1:
        raise CommandError("--models must be at least 1.")
    if plan["duration"] <= 0 or plan["warmup"] < 0:
        raise CommandError("--duration must be positive and --warmup not negative.")
    for name in ("rounds", "threads", "workers", "worker_threads"):
        if plan[name] < 1:
            raise CommandError(f"--{name.replace('_', '-')} must be at least 1.")
    if plan["connections"] < plan["threads"]:
        raise CommandError("--connections must be at least --threads (wrk's rule).")
    if plan["worker_class"] not in ("sync", "gthread"):
        raise CommandError("--worker-class is sync or gthread.")
    if "bench" not in plan["prefix"]:
        raise CommandError(f"--database-prefix must contain 'bench' (the databases are "
                           f"filled with test data), got {plan['prefix']!r}.")
    pool = pool_size(plan["threads"], plan["connections"])
    if pool * plan["threads"] > WRITERS:
        raise CommandError(f"{plan['threads']} threads x {pool} users exceed the "
                           f"{WRITERS} seeded writers; use fewer threads or connections.")
    if options["compare"]:
        plan["compare"] = parse_sizes(options["compare"])
    names = [n.strip() for n in (options["scenarios"] or "").split(",") if n.strip()]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise CommandError(f"Unknown scenario(s): {', '.join(unknown)}. "
                           f"Known: {', '.join(BY_NAME)}.")
    if plan["compare"]:
        names = [n for n in (names or READS) if n in READS]
        if not names:
            raise CommandError("--compare runs read scenarios only; none was chosen.")
    plan["scenarios"] = names or list(BY_NAME)
    return plan


def pool_size(threads: int, connections: int) -> int:
    """Users per wrk thread: well above its connections, so requests in flight differ."""
    return max(64, 4 * math.ceil(connections / threads))


def reference_ms() -> float:
    """CPU ms of a fixed pure-Python workload, best of 5: how fast this machine runs Python
    at the moment. Shared machines differ from one another and drift within a session, so
    runs are compared with this figure beside them."""
    best = math.inf
    for _ in range(5):
        started = time.process_time()
        total = 0
        for i in range(300_000):
            total += i * i % 7
        best = min(best, time.process_time() - started)
    return round(best * 1000, 1)


def machine() -> dict:
    model = ""
    try:
        with open("/proc/cpuinfo") as info:
            model = next((line.split(":", 1)[1].strip() for line in info
                          if line.startswith("model name")), "")
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "python": platform.python_version(), "load_average": os.getloadavg()}


class Command(BaseCommand):
    help = ("Seed a bench PostgreSQL database (one per size), start gunicorn with "
            "gunicorn.conf.py and its own Redis, run every scenario with wrk and print req/s, "
            "latency, non-2xx, CPU ms/request (app/db/redis) and queries/request against the "
            "targets of issue 9. Results also go to bench/results/ as JSON.")

    def add_arguments(self, parser):
        parser.add_argument("--models", type=int, default=None,
                            help=f"Models to seed (default {DEFAULT_MODELS}; {QUICK_MODELS} "
                                 "with --quick).")
        parser.add_argument("--quick", action="store_true",
                            help=f"{QUICK_MODELS} models and 5 s per scenario.")
        parser.add_argument("--duration", type=float, default=None,
                            help="Seconds per scenario and round (default 20; 5 with --quick).")
        parser.add_argument("--warmup", type=float, default=None,
                            help="Seconds of warm-up per scenario before the first round.")
        parser.add_argument("--rounds", type=int, default=2,
                            help="Rounds; every other round runs the scenarios in reverse.")
        parser.add_argument("--threads", type=int, default=2, help="wrk threads.")
        parser.add_argument("--connections", type=int, default=16, help="wrk connections.")
        parser.add_argument("--workers", type=int, default=2, help="gunicorn workers.")
        parser.add_argument("--worker-class", default="gthread",
                            help="gunicorn worker class: gthread (gunicorn.conf.py's) or sync.")
        parser.add_argument("--worker-threads", type=int, default=4,
                            help="Threads per gthread worker.")
        parser.add_argument("--scenarios", default="",
                            help=f"Comma-separated subset of: {', '.join(BY_NAME)}.")
        parser.add_argument("--compare", default="",
                            help="Two sizes such as 1000,100000: the reads at both, and the "
                                 "p50 ratio and queries/request per read.")
        parser.add_argument("--database-prefix",
                            default=os.environ.get("BENCH_DB_PREFIX", "ai_registry_bench"),
                            help="Databases are <prefix>_<models> (default ai_registry_bench).")
        parser.add_argument("--postgres", default=os.environ.get(
                            "BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432"),
                            help="PostgreSQL server URL, without a database name.")
        parser.add_argument("--output", default=str(Path(settings.BASE_DIR) / "bench" / "results"),
                            help="Directory of the JSON results.")

    def handle(self, *args, **options):
        plan = check_options(options)
        for tool in ("wrk", "redis-server"):
            if shutil.which(tool) is None:
                raise CommandError(f"{tool} is not installed (Debian: apt-get install -y "
                                   f"{'wrk' if tool == 'wrk' else 'redis-server'}).")
        started = datetime.datetime.now(datetime.UTC)
        speed_before = reference_ms()
        sizes = plan["compare"] or (plan["models"],)
        with contextlib.ExitStack() as stack:
            # Every size's server stays up for the whole run, so that with --compare the
            # sizes take turns scenario by scenario: whatever else the machine runs falls on
            # both alike, instead of on whichever size ran at that moment.
            runs = {size: stack.enter_context(SizeRun(self, size, plan, options["postgres"]))
                    for size in sizes}
            read_names = min([READ_NAMES, *(run.approved_names() for run in runs.values())])
            if read_names == 0:
                raise CommandError("A bench database holds no approved model.")
            for run in runs.values():
                run.prepare_load(read_names)
            if plan["warmup"]:
                self.stdout.write(f"Warm-up: {plan['warmup']:g} s per scenario.")
                for size in sizes:
                    for name in plan["scenarios"]:
                        runs[size].once(name, plan["warmup"], measured=False)
            for number, steps in enumerate(schedule(plan["scenarios"], sizes, plan["rounds"])):
                self.stdout.write(f"Round {number + 1} of {plan['rounds']}:")
                for name, size in steps:
                    runs[size].once(name, plan["duration"], measured=True)
            results = {size: run.results() for size, run in runs.items()}
        speed = [speed_before, reference_ms()]
        document = {"started": started.isoformat(timespec="seconds"),
                    "machine": {**machine(), "reference_ms": speed},
                    "plan": dict(plan.items()), "runs": {}}
        for size, (figures, locks, database) in results.items():
            self.stdout.write("")
            self.stdout.write(f"{size} models (database {database}), {plan['rounds']} round(s) "
                              f"x {plan['duration']:g} s, wrk {plan['threads']} threads / "
                              f"{plan['connections']} connections, gunicorn {plan['workers']} "
                              f"{plan['worker_class']} workers"
                              + (f" x {plan['worker_threads']} threads"
                                 if plan["worker_class"] == "gthread" else "") + ":")
            self.stdout.write(report.table(figures))
            for line in report.lock_lines(locks):
                self.stdout.write(line)
            document["runs"][str(size)] = {"database": database, "scenarios": figures,
                                           "lock_waits": locks}
        if plan["compare"]:
            small, large = plan["compare"]
            rows, text = report.compare(results[small][0], results[large][0], (small, large))
            self.stdout.write("")
            self.stdout.write(f"Flatness, {small} vs {large} models (the sizes alternated "
                              "scenario by scenario):")
            self.stdout.write(text)
            document["compare"] = rows
        self.stdout.write("CPU ms/request is the steadier figure on a shared machine: req/s and "
                          "latency move with whatever else runs (wrk itself included).")
        self.stdout.write(f"Machine speed: a fixed Python workload took {speed[0]:g} ms of CPU "
                          f"before the run and {speed[1]:g} ms after it (lower is faster; "
                          "compare runs at similar figures).")
        stem = started.strftime("%Y%m%dT%H%M%SZ") + "-" + "-".join(str(s) for s in sizes)
        path = report.write_json(Path(options["output"]), stem, document)
        self.stdout.write(f"Written: {path}")


def schedule(names: list[str], sizes: tuple[int, ...], rounds: int) -> list[list[tuple]]:
    """Each round's (scenario, size) steps in order.

    Every other round runs the scenarios in reverse, so that no scenario always follows the
    same one; within a round each scenario runs at every size in turn, the sizes' order also
    reversed every other round, so that the two sizes of a scenario are measured minutes, not
    a whole run, apart.
    """
    plan = []
    for number in range(rounds):
        order = names if number % 2 == 0 else list(reversed(names))
        turn = list(sizes) if number % 2 == 0 else list(reversed(sizes))
        plan.append([(name, size) for name in order for size in turn])
    return plan


APPROVED_NAMES = ("SELECT DISTINCT name FROM models_app_registration WHERE status = 'approved' "
                  "AND name NOT LIKE 'bench-writer-%%'")


class SizeRun:
    """One size for the whole run: its seeded database, its own redis-server, gunicorn and
    Celery worker, and the figures of each scenario measured against them."""

    def __init__(self, command: BaseCommand, models: int, plan: dict, postgres: str):
        self.models, self.plan, self.postgres = models, plan, postgres
        self.stdout, self.stderr = command.stdout, command.stderr
        self.database = f"{plan['prefix']}_{models}"
        self.dsn = f"{postgres.rstrip('/')}/{self.database}"
        self.names = list(plan["scenarios"])
        threads = plan["threads"]
        self.pool = pool_size(threads, plan["connections"])
        self.per_thread = math.ceil(MAX_WRITE_RATE / threads
                                    * (plan["duration"] * plan["rounds"] + plan["warmup"])) + 100
        self.open_per_thread = math.ceil(self.per_thread / self.pool) + 1
        self.offsets = {name: [0] * threads for name in self.names}
        self.rows = {name: Row(name, BY_NAME[name].label, target=BY_NAME[name].target)
                     for name in self.names}
        self.locks = {}
        self.label = f" @{models}" if plan["compare"] else ""
        self._stack = contextlib.ExitStack()

    # Start and stop ------------------------------------------------------------------------

    def __enter__(self):
        stack = self._stack
        try:
            self.work = work = Path(stack.enter_context(
                tempfile.TemporaryDirectory(prefix="air-bench-")))
            redis_log = stack.enter_context(open(work / "redis.log", "wb"))  # noqa: SIM115
            self.gunicorn_log = stack.enter_context(open(work / "gunicorn.log", "wb"))  # noqa: SIM115
            worker_log = stack.enter_context(open(work / "worker.log", "wb"))  # noqa: SIM115
            self.redis, redis_url = runner.start_redis(redis_log)
            stack.callback(self.redis.stop)
            self.prepare_database(redis_url, (self.open_per_thread * self.plan["threads"]
                                              if "vote" in self.names else 0))
            port = runner.free_port()
            env = runner.server_env(database_url=self.dsn, redis_url=redis_url,
                                    workers=self.plan["workers"],
                                    worker_class=self.plan["worker_class"],
                                    threads=self.plan["worker_threads"], port=port)
            self.server = runner.start_gunicorn(Path(settings.BASE_DIR), env, port,
                                                self.gunicorn_log)
            stack.callback(self.server.process.stop)
            self.worker = runner.start_worker(Path(settings.BASE_DIR), env, worker_log)
            stack.callback(self.worker.stop)
            self.stdout.write(f"{self.models} models: gunicorn answers on {self.server.base}; "
                              f"Redis {redis_url}.")
            self.meter = runner.PostgresMeter(self.dsn, self.database)
            stack.callback(self.meter.close)
            self.sampler = runner.LockSampler(self.dsn, self.database)
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def __exit__(self, kind, error, trace):
        if error is not None and getattr(self, "gunicorn_log", None) is not None:
            self.gunicorn_log.flush()
            tail = (self.work / "gunicorn.log").read_text(errors="replace")[-3000:]
            if tail:
                self.stderr.write(f"gunicorn log ({self.models} models, end):\n" + tail)
        self._stack.close()
        return False

    def prepare_database(self, redis_url, open_proposals):
        from benchmarks_app.management.commands.bench_seed import seed_marker

        database = self.database
        with psycopg.connect(f"{self.postgres.rstrip('/')}/postgres", autocommit=True) as admin:
            row = admin.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                                "WHERE datname = %s", [database]).fetchone()
            if row is not None and (row[0] or "") != seed_marker(self.models):
                self.stdout.write(f"{database} holds no complete seed: dropping it.")
                admin.execute(f'DROP DATABASE "{database}"')
                row = None
            if row is None:
                admin.execute(f'CREATE DATABASE "{database}"')
                self.stdout.write(f"Created the database {database}.")
        env = {**os.environ, "DATABASE_URL": self.dsn, "REDIS_URL": redis_url,
               "DJANGO_SETTINGS_MODULE": "registry_site.settings"}
        manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
        for command in (["migrate", "--noinput", "-v", "0"],
                        ["bench_seed", "--models", str(self.models),
                         "--open-proposals", str(open_proposals)]):
            done = os.spawnve(os.P_WAIT, sys.executable, [*manage, *command], env)
            if done != 0:
                raise CommandError(f"manage.py {command[0]} on {database} failed (exit {done}).")

    def approved_names(self) -> int:
        with psycopg.connect(self.dsn) as conn:
            return conn.execute(f"SELECT count(*) FROM ({APPROVED_NAMES}) approved",
                                []).fetchone()[0]

    def prepare_load(self, read_names: int) -> None:
        """The requests' context (``read_names`` model names, writers, proposals) and the
        deep page's cursor."""
        self.context = self.read_context(read_names)
        for name in self.names:
            scenario = BY_NAME[name]
            if scenario.follow_next:
                self.context.deep_paths[name] = runner.follow_next(
                    self.server, scenario.path, scenario.follow_next)
                self.stdout.write(f"{name}{self.label}: {self.context.deep_paths[name]}")

    def read_context(self, read_names: int) -> Context:
        threads, pool = self.plan["threads"], self.pool
        with psycopg.connect(self.dsn) as conn:
            names = [r[0] for r in conn.execute(
                f"SELECT name FROM ({APPROVED_NAMES}) approved ORDER BY random() LIMIT %s",
                [read_names]).fetchall()]
            proposals = [r[0] for r in conn.execute(
                "SELECT id FROM governance_app_proposal WHERE title LIKE 'Bench past%%' "
                "ORDER BY id LIMIT 500").fetchall()]
            opened = [r[0] for r in conn.execute(
                "SELECT p.id FROM governance_app_proposal p WHERE p.title LIKE %s AND "
                "p.canceled_at IS NULL AND p.voting_ends_at > now() + interval '6 hours' AND "
                "NOT EXISTS (SELECT 1 FROM governance_app_vote v WHERE v.proposal_id = p.id) "
                "ORDER BY p.id LIMIT %s", [OPEN_TITLE + "%", self.open_per_thread * threads]
            ).fetchall()]
        pools = []
        for t in range(threads):
            users = []
            for i in range(t * pool, (t + 1) * pool):
                username = f"bench-writer-{i:04d}"
                users.append((username, bench_secret(username), writer_model(i)))
            pools.append(users)
        per = self.open_per_thread
        return Context(
            names=names, words=SEARCH_WORDS, proposals=proposals, pools=pools,
            open_proposals=[opened[t * per:(t + 1) * per] for t in range(threads)],
            run_tag="b" + format(int(time.time() * 10), "x"))

    # Load ------------------------------------------------------------------------------------

    def once(self, name: str, seconds: float, measured: bool) -> None:
        """One wrk run of scenario ``name``; its figures count when ``measured``."""
        scenario, threads, work = BY_NAME[name], self.plan["threads"], self.work
        prefix = str(work / name)
        count = self.per_thread if scenario.write else READ_LINES
        for t in range(threads):
            lines = request_lines(scenario, self.context, t, self.offsets[name][t], count)
            (work / f"{name}.{t}.tsv").write_text("\n".join(lines) + "\n")
        # The app is gunicorn and the Celery worker (sealing, folding what requests wrote).
        server, worker, redis = self.server, self.worker, self.redis
        app_before = runner.tree_seconds(server.process.pid) + runner.tree_seconds(worker.pid)
        redis_before = runner.tree_seconds(redis.pid)
        sample = measured and scenario.sample_locks
        self.meter.start()
        if sample:
            self.sampler.start()
        result = runner.run_wrk(url=server.base, script=WRK_SCRIPT, prefix=prefix,
                                threads=threads, connections=self.plan["connections"],
                                seconds=seconds)
        locked = self.sampler.stop() if sample else None
        db = self.meter.stop()
        app = (runner.tree_seconds(server.process.pid) + runner.tree_seconds(worker.pid)
               - app_before)
        redis_cpu = runner.tree_seconds(redis.pid) - redis_before
        for t, counters in enumerate(sorted(result["threads"], key=lambda c: c["id"])):
            self.offsets[name][t] += int(counters["sent"])
        if not measured:
            return
        statuses = {}
        for counters in result["threads"]:
            for status, n in (counters.get("statuses") or {}).items():
                statuses[status] = statuses.get(status, 0) + int(n)
        errors = result.get("errors") or {}
        self.rows[name].rounds.append(Round(
            requests=int(result["requests"]), duration_s=result["duration_us"] / 1e6,
            p50_ms=result["p50_us"] / 1000, p99_ms=result["p99_us"] / 1000,
            non2xx=sum(int(c["non2xx"]) for c in result["threads"]), statuses=statuses,
            queries=sum(int(c["queries"]) for c in result["threads"]),
            socket_errors=sum(int(errors.get(k, 0)) for k in ("connect", "read", "write",
                                                               "timeout")),
            cpu_app_s=app, cpu_db_s=db, cpu_redis_s=redis_cpu))
        if locked is not None:
            merged = self.locks.setdefault(name, runner.LockReport())
            merged.samples += locked.samples
            merged.samples_waiting += locked.samples_waiting
            for what, n in locked.waits.items():
                merged.waits[what] = merged.waits.get(what, 0) + n
        r = self.rows[name].rounds[-1]
        self.stdout.write(f"  {name + self.label:<18} {r.requests / r.duration_s:7.0f} req/s  "
                          f"p50 {r.p50_ms:6.1f} ms  p99 {r.p99_ms:6.1f} ms  "
                          f"non-2xx {r.non2xx}" + (f" {statuses}" if statuses else ""))

    def results(self):
        return ([self.rows[name].figures() for name in self.names],
                {name: locks.as_dict() for name, locks in self.locks.items()}, self.database)
