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
        runs = {}
        for size in sizes:
            runs[size] = self.run_size(size, plan, options["postgres"])
        speed = [speed_before, reference_ms()]
        document = {"started": started.isoformat(timespec="seconds"),
                    "machine": {**machine(), "reference_ms": speed},
                    "plan": dict(plan.items()), "runs": {}}
        for size, (figures, locks, database) in runs.items():
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
            rows, text = report.compare(runs[small][0], runs[large][0], (small, large))
            self.stdout.write("")
            self.stdout.write(f"Flatness, {small} vs {large} models:")
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

    # One size --------------------------------------------------------------------------------

    def run_size(self, models: int, plan: dict, postgres: str):
        database = f"{plan['prefix']}_{models}"
        dsn = f"{postgres.rstrip('/')}/{database}"
        names = list(plan["scenarios"])
        threads = plan["threads"]
        pool = pool_size(threads, plan["connections"])
        per_thread = math.ceil(MAX_WRITE_RATE / threads
                               * (plan["duration"] * plan["rounds"] + plan["warmup"])) + 100
        open_per_thread = math.ceil(per_thread / pool) + 1
        with contextlib.ExitStack() as stack:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="air-bench-")))
            redis_log = stack.enter_context(open(work / "redis.log", "wb"))  # noqa: SIM115
            gunicorn_log = stack.enter_context(open(work / "gunicorn.log", "wb"))  # noqa: SIM115
            worker_log = stack.enter_context(open(work / "worker.log", "wb"))  # noqa: SIM115
            redis, redis_url = runner.start_redis(redis_log)
            server = self.worker = None
            try:
                self.prepare_database(postgres, database, dsn, models, redis_url,
                                      open_per_thread * threads if "vote" in names else 0)
                port = runner.free_port()
                env = runner.server_env(database_url=dsn, redis_url=redis_url,
                                        workers=plan["workers"],
                                        worker_class=plan["worker_class"],
                                        threads=plan["worker_threads"], port=port)
                server = runner.start_gunicorn(Path(settings.BASE_DIR), env, port, gunicorn_log)
                self.worker = runner.start_worker(Path(settings.BASE_DIR), env, worker_log)
                self.stdout.write(f"gunicorn answers on {server.base}; Redis {redis_url}.")
                context = self.context(dsn, threads, pool, open_per_thread)
                for name in names:
                    scenario = BY_NAME[name]
                    if scenario.follow_next:
                        context.deep_paths[name] = runner.follow_next(
                            server, scenario.path, scenario.follow_next)
                        self.stdout.write(f"{name}: {context.deep_paths[name]}")
                figures, locks = self.load(server, redis, dsn, database, context, names, plan,
                                           work, per_thread)
            except Exception:
                gunicorn_log.flush()
                tail = (work / "gunicorn.log").read_text(errors="replace")[-3000:]
                if tail:
                    self.stderr.write("gunicorn log (end):\n" + tail)
                raise
            finally:
                if server is not None:
                    server.process.stop()
                if self.worker is not None:
                    self.worker.stop()
                redis.stop()
        return figures, locks, database

    def prepare_database(self, postgres, database, dsn, models, redis_url, open_proposals):
        from benchmarks_app.management.commands.bench_seed import seed_marker

        with psycopg.connect(f"{postgres.rstrip('/')}/postgres", autocommit=True) as admin:
            row = admin.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                                "WHERE datname = %s", [database]).fetchone()
            if row is not None and (row[0] or "") != seed_marker(models):
                self.stdout.write(f"{database} holds no complete seed: dropping it.")
                admin.execute(f'DROP DATABASE "{database}"')
                row = None
            if row is None:
                admin.execute(f'CREATE DATABASE "{database}"')
                self.stdout.write(f"Created the database {database}.")
        env = {**os.environ, "DATABASE_URL": dsn, "REDIS_URL": redis_url,
               "DJANGO_SETTINGS_MODULE": "registry_site.settings"}
        manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
        for command in (["migrate", "--noinput", "-v", "0"],
                        ["bench_seed", "--models", str(models),
                         "--open-proposals", str(open_proposals)]):
            done = os.spawnve(os.P_WAIT, sys.executable, [*manage, *command], env)
            if done != 0:
                raise CommandError(f"manage.py {command[0]} on {database} failed (exit {done}).")

    def context(self, dsn, threads, pool, open_per_thread) -> Context:
        with psycopg.connect(dsn) as conn:
            names = [r[0] for r in conn.execute(
                "SELECT name FROM (SELECT DISTINCT name FROM models_app_registration WHERE "
                "status = 'approved' AND name NOT LIKE 'bench-writer-%%') approved "
                "ORDER BY random() LIMIT 2000").fetchall()]
            proposals = [r[0] for r in conn.execute(
                "SELECT id FROM governance_app_proposal WHERE title LIKE 'Bench past%%' "
                "ORDER BY id LIMIT 500").fetchall()]
            opened = [r[0] for r in conn.execute(
                "SELECT p.id FROM governance_app_proposal p WHERE p.title LIKE %s AND "
                "p.canceled_at IS NULL AND p.voting_ends_at > now() + interval '6 hours' AND "
                "NOT EXISTS (SELECT 1 FROM governance_app_vote v WHERE v.proposal_id = p.id) "
                "ORDER BY p.id LIMIT %s", [OPEN_TITLE + "%", open_per_thread * threads]
            ).fetchall()]
        if not names:
            raise CommandError("The bench database holds no approved model.")
        pools = []
        for t in range(threads):
            users = []
            for i in range(t * pool, (t + 1) * pool):
                username = f"bench-writer-{i:04d}"
                users.append((username, bench_secret(username), writer_model(i)))
            pools.append(users)
        return Context(
            names=names, words=SEARCH_WORDS, proposals=proposals, pools=pools,
            open_proposals=[opened[t * open_per_thread:(t + 1) * open_per_thread]
                            for t in range(threads)],
            run_tag="b" + format(int(time.time() * 10), "x"))

    def load(self, server, redis, dsn, database, context, names, plan, work, per_thread):
        threads = plan["threads"]
        offsets = {name: [0] * threads for name in names}
        rows = {name: Row(name, BY_NAME[name].label, target=BY_NAME[name].target)
                for name in names}
        meter = runner.PostgresMeter(dsn, database)
        sampler = runner.LockSampler(dsn, database)
        locks = {}

        def once(name: str, seconds: float, measured: bool):
            scenario = BY_NAME[name]
            prefix = str(work / name)
            count = per_thread if scenario.write else READ_LINES
            for t in range(threads):
                lines = request_lines(scenario, context, t, offsets[name][t], count)
                (work / f"{name}.{t}.tsv").write_text("\n".join(lines) + "\n")
            # The app is gunicorn and the Celery worker (sealing, folding what requests wrote).
            app_before = (runner.tree_seconds(server.process.pid)
                          + runner.tree_seconds(self.worker.pid))
            redis_before = runner.tree_seconds(redis.pid)
            meter.start()
            if measured and scenario.sample_locks:
                sampler.start()
            result = runner.run_wrk(url=server.base, script=WRK_SCRIPT, prefix=prefix,
                                    threads=threads, connections=plan["connections"],
                                    seconds=seconds)
            locked = sampler.stop() if measured and scenario.sample_locks else None
            db = meter.stop()
            app = (runner.tree_seconds(server.process.pid)
                   + runner.tree_seconds(self.worker.pid) - app_before)
            redis_cpu = runner.tree_seconds(redis.pid) - redis_before
            for t, counters in enumerate(sorted(result["threads"], key=lambda c: c["id"])):
                offsets[name][t] += int(counters["sent"])
            if not measured:
                return
            statuses = {}
            for counters in result["threads"]:
                for status, n in (counters.get("statuses") or {}).items():
                    statuses[status] = statuses.get(status, 0) + int(n)
            errors = result.get("errors") or {}
            rows[name].rounds.append(Round(
                requests=int(result["requests"]), duration_s=result["duration_us"] / 1e6,
                p50_ms=result["p50_us"] / 1000, p99_ms=result["p99_us"] / 1000,
                non2xx=sum(int(c["non2xx"]) for c in result["threads"]), statuses=statuses,
                queries=sum(int(c["queries"]) for c in result["threads"]),
                socket_errors=sum(int(errors.get(k, 0)) for k in ("connect", "read", "write",
                                                                   "timeout")),
                cpu_app_s=app, cpu_db_s=db, cpu_redis_s=redis_cpu))
            if locked is not None:
                merged = locks.setdefault(name, runner.LockReport())
                merged.samples += locked.samples
                merged.samples_waiting += locked.samples_waiting
                for what, n in locked.waits.items():
                    merged.waits[what] = merged.waits.get(what, 0) + n
            r = rows[name].rounds[-1]
            self.stdout.write(f"  {name:<11} {r.requests / r.duration_s:7.0f} req/s  "
                              f"p50 {r.p50_ms:6.1f} ms  p99 {r.p99_ms:6.1f} ms  "
                              f"non-2xx {r.non2xx}" + (f" {statuses}" if statuses else ""))

        try:
            if plan["warmup"]:
                self.stdout.write(f"Warm-up: {plan['warmup']:g} s per scenario.")
                for name in names:
                    once(name, plan["warmup"], measured=False)
            for number in range(plan["rounds"]):
                order = names if number % 2 == 0 else list(reversed(names))
                self.stdout.write(f"Round {number + 1} of {plan['rounds']}:")
                for name in order:
                    once(name, plan["duration"], measured=True)
        finally:
            meter.close()
        return ([rows[name].figures() for name in names],
                {name: report.as_dict() for name, report in locks.items()})
