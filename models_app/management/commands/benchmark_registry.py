"""Load benchmark of the registry API against a dedicated PostgreSQL database (issue 3).

Fills a ``*bench*`` database up to ``--rows`` registrations, starts gunicorn on a free local
port, drives it with keep-alive HTTP clients from this process and prints throughput and
latency per scenario against the targets of issue 3. Speed is measured here, never in tests.

The data stays in the bench database after the run (a second run skips the fill), since
refilling 100,000 rows costs more than the benchmark itself; ``dropdb ai_registry_bench``
removes it.
"""

import datetime
import hashlib
import http.client
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from models_app.models import (
    Category,
    ModelName,
    ModelUser,
    Registration,
    Source,
    StatusChange,
    UsageStats,
)

Status = Registration.Status

HOW_TO_RUN = (
    "Run it against its own PostgreSQL database, for example:\n"
    "  createdb -h 127.0.0.1 -U postgres ai_registry_bench\n"
    "  DATABASE_URL=postgres://postgres@127.0.0.1:5432/ai_registry_bench "
    "REDIS_URL=redis://127.0.0.1:6379/5 .venv/bin/python manage.py migrate && "
    "DATABASE_URL=postgres://postgres@127.0.0.1:5432/ai_registry_bench "
    "REDIS_URL=redis://127.0.0.1:6379/5 .venv/bin/python manage.py benchmark_registry\n"
    "or simply: make benchmark"
)

# Requests per second from issue 3 ("Design for 100,000 registrations and more on 2 cores").
GET_BY_NAME_TARGET = 1300
SEARCH_TARGET = 260

OWNERS = 300
MODERATOR = "bench-moderator"
BATCH = 5000
MB = 1_048_576
# Throttles stay on (their Redis round trips are part of every request) but never refuse.
UNTHROTTLED = "100000000/min"


def words(text: str) -> list[str]:
    """The words of ``text``: long word lists read better as one string."""
    return text.split()


# Status of a version when it was generated; most of a living registry is approved.
STATUS_WEIGHTS = {Status.APPROVED: 80, Status.PENDING: 7, Status.DEPRECATED: 6,
                  Status.REJECTED: 4, Status.SUSPENDED: 3}
ADJECTIVES = words(
    "swift tiny large base small mega micro nano deep bright calm rapid lean robust sharp "
    "fast light dense sparse quantized distilled compact open fine wide"
)
FAMILIES = {
    Category.NLP: words("bert roberta gpt t5 electra xlnet deberta llama mistral bart"),
    Category.COMPUTER_VISION: words("resnet vit yolo efficientnet mobilenet convnext detr "
                                    "unet segformer swin"),
    Category.SPEECH: words("whisper wav2vec hubert conformer tacotron ecapa quartznet"),
    Category.RECOMMENDATION: words("two-tower dlrm wide-deep ncf sasrec bert4rec"),
    Category.TIME_SERIES: words("lstm tcn informer nbeats deepar prophet patchtst"),
    Category.GENERATIVE: words("diffusion vae gan stylegan flow musicgen"),
    Category.OTHER: words("xgboost lightgbm catboost forest tabnet gnn"),
}
ARCHITECTURES = {
    Category.NLP: "Transformer encoder", Category.COMPUTER_VISION: "Convolutional network",
    Category.SPEECH: "Encoder-decoder transformer", Category.RECOMMENDATION: "Two-tower",
    Category.TIME_SERIES: "Recurrent network", Category.GENERATIVE: "Diffusion U-Net",
    Category.OTHER: "Gradient-boosted trees",
}
LICENSES = ["Apache-2.0", "MIT", "BSD-3-Clause", "GPL-3.0", "CC-BY-4.0", ""]
TAGS = words(
    "text embeddings english multilingual classification sentiment ner summarization "
    "translation qa chat code image-classification object-detection segmentation faces ocr "
    "imagenet coco edge mobile onnx int8 fp16 asr tts speaker kws audio ranking retrieval ctr "
    "forecasting anomaly sensors finance energy diffusion text-to-image music tabular graph "
    "fraud medical legal retail gaming robotics"
)
# Description words, drawn with Zipf-like weights so that searched words range from common
# (thousands of rows) to rare (a handful).
WORDS = words(
    "model trained dataset accuracy fast inference production benchmark fine-tuned "
    "pretrained latency throughput quantized pruned distilled robust multilingual english "
    "german french spanish chinese japanese medical legal financial retail news reviews "
    "tweets images video audio speech sensors logs transactions clicks sessions products "
    "documents contracts invoices receipts radiology pathology satellite drone traffic "
    "weather energy demand churn fraud anomaly ranking retrieval captioning translation "
    "summarization classification detection segmentation tracking forecasting generation "
    "denoising upscaling embeddings similarity clustering tagging parsing tokenizer vocabulary "
    "attention convolution recurrent transformer adapter lora checkpoint export gpu cpu edge "
    "mobile browser server batch streaming realtime offline calibrated explainable fair "
    "private federated synthetic augmented curated licensed open research commercial "
    "experimental stable deprecated baseline state-of-the-art lightweight compact efficient"
)
WORD_WEIGHTS = [1 / (rank + 1) ** 0.8 for rank in range(len(WORDS))]
# Searched words: common, middling and rare ones.
SEARCH_WORDS = [WORDS[i] for i in (0, 1, 3, 5, 8, 12, 20, 30, 45, 60, 80, 100, 110)]


def refusal(vendor: str, name: str) -> str | None:
    """Why the benchmark must not run on this database, or None when it may."""
    if vendor != "postgresql":
        return (f"The benchmark runs on PostgreSQL only; the configured database is {vendor} "
                f"({name}). It fills the database with test data and measures the "
                f"production setup.\n{HOW_TO_RUN}")
    if "bench" not in name:
        return (f"Refusing to fill the database {name!r}: the benchmark adds registrations "
                f"in bulk, so it runs only on a database whose name contains 'bench'.\n"
                f"{HOW_TO_RUN}")
    return None


@dataclass
class Scenario:
    label: str
    target: int
    path: object  # a callable: random.Random -> request path


@dataclass
class Result:
    requests: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    connections: int = 0


class Command(BaseCommand):
    help = ("Fill a *bench* PostgreSQL database up to --rows registrations, start gunicorn and "
            "measure get-by-name and filtered search against the targets of issue 3.")

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=100_000,
                            help="Registrations to have in the database (default 100000).")
        parser.add_argument("--seconds", type=float, default=10,
                            help="Measured seconds per scenario, after a warm-up (default 10).")
        parser.add_argument("--workers", type=int, default=2,
                            help="gunicorn worker processes (default 2).")
        parser.add_argument("--threads", type=int, default=1,
                            help="Threads per gunicorn worker (default 1: the sync worker of "
                                 "the README's production command; more uses gthread).")
        parser.add_argument("--concurrency", type=int, default=8,
                            help="Client threads, each on its own keep-alive connection "
                                 "(default 8).")
        parser.add_argument("--keep", action="store_true",
                            help="Keep the data (the default too: the data lives only in the "
                                 "bench database and a second run reuses it).")

    def handle(self, *args, **options):
        database = settings.DATABASES["default"]
        reason = refusal(connection.vendor, str(database["NAME"]))
        if reason:
            raise CommandError(reason)
        for option in ("rows", "workers", "threads", "concurrency"):
            if options[option] < 1:
                raise CommandError(f"--{option} must be at least 1.")
        if options["seconds"] <= 0:
            raise CommandError("--seconds must be positive.")
        if not os.environ.get("REDIS_URL"):
            self.stdout.write(self.style.WARNING(
                "REDIS_URL is not set: each gunicorn worker counts throttles in its own "
                "memory, unlike production."))

        started = time.monotonic()
        rows = self.fill(options["rows"])
        self.stdout.write(f"Fill: {rows} registrations ready in "
                          f"{time.monotonic() - started:.0f} s.")
        scenarios = self.scenarios()

        with tempfile.TemporaryFile() as log:
            server, port = self.start_gunicorn(options["workers"], options["threads"], log)
            try:
                results = [(s, self.drive(port, s, options["seconds"], options["concurrency"]))
                           for s in scenarios]
            finally:
                self.stop_gunicorn(server)
                log.seek(0)
                server_log = log.read().decode(errors="replace").strip()
        self.report(results, rows=rows, options=options)
        if server_log:
            self.stdout.write("gunicorn log (last lines):")
            for line in server_log.splitlines()[-10:]:
                self.stdout.write(f"  {line}")
        self.stdout.write("The data stays in the bench database; a second run reuses it.")

    # The fill -----------------------------------------------------------------------------

    def fill(self, rows: int) -> int:
        """Top the registry up to ``rows`` registrations; ANALYZE; answer the row count.

        This bypasses models_app.services on purpose: registering 100,000 versions one at a
        time (fees, locks, audit events) would take far longer than the benchmark. The rows
        obey every database constraint and look like what the services write (a usage row
        and a status history per version, a ModelName per name), but no fees are debited and
        no audit events are written.
        """
        existing = Registration.objects.count()
        if existing >= rows:
            self.stdout.write(f"Fill: {existing} registrations already there, nothing added.")
            return existing
        self.stdout.write(f"Fill: adding {rows - existing} registrations to {existing} ...")
        owners, moderator = self.bench_users()
        rng = random.Random(existing)
        next_name = ModelName.objects.count()
        added = 0
        while existing + added < rows:
            batch, next_name = self.make_batch(
                rng, owners, next_name, min(BATCH, rows - existing - added))
            with transaction.atomic():
                added += self.insert_batch(rng, batch, owners, moderator)
            self.stdout.write(f"  {existing + added} / {rows}")
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        return Registration.objects.count()

    def bench_users(self):
        User = get_user_model()
        # One unusable password hash for all: nobody logs in as a bench owner.
        password = make_password(None)
        names = [f"bench-owner-{i:03d}" for i in range(OWNERS)] + [MODERATOR]
        User.objects.bulk_create([User(username=n, password=password) for n in names],
                                 ignore_conflicts=True)
        users = {u.username: u for u in User.objects.filter(username__in=names)}
        return [users[n] for n in names[:-1]], users[MODERATOR]

    def make_batch(self, rng, owners, next_name, size):
        """About ``size`` unsaved Registrations, all versions of new names."""
        now = timezone.now()
        batch = []
        while len(batch) < size:
            category = rng.choice(Category.values)
            name = (f"{rng.choice(ADJECTIVES)}-{rng.choice(FAMILIES[category])}-"
                    f"{rng.choice(['base', 'small', 'large', 'xl', 'tiny', 'v2', 'lite'])}-"
                    f"{next_name:06d}")
            next_name += 1
            owner = rng.choice(owners)
            versions = min(rng.choice([1, 1, 1, 2, 2, 3, 4]), size - len(batch))
            registered = now - datetime.timedelta(days=rng.uniform(30, 1100))
            size_bytes = int(rng.lognormvariate(17, 2)) % (20_000 * MB) + 1024
            parameters = max(1000, size_bytes // 4)
            tags = rng.sample(TAGS, rng.randint(1, 5))
            for v in range(versions):
                words = rng.choices(WORDS, weights=WORD_WEIGHTS, k=rng.randint(12, 40))
                batch.append(Registration(
                    name=name, version=f"{1 + v // 2}.{v % 2}.{rng.randint(0, 9)}",
                    owner=owner,
                    hash=hashlib.sha256(f"{name}/{v}".encode()).hexdigest(),
                    description=" ".join(words).capitalize() + ".",
                    license=rng.choice(LICENSES),
                    source_url=f"https://models.example.org/{name}",
                    tags=tags + ([rng.choice(TAGS)] if v else []),
                    category=category, architecture=ARCHITECTURES[category],
                    input_shape=[1, rng.choice([128, 256, 512, 1024])],
                    output_shape=[1, rng.choice([2, 10, 768, 1000])],
                    size_bytes=size_bytes + v * rng.randint(0, 10 * MB),
                    parameter_count=parameters,
                    status=rng.choices(list(STATUS_WEIGHTS), list(STATUS_WEIGHTS.values()))[0],
                    registration_fee=1000 if v == 0 else rng.randint(1, 500),
                    registered_at=registered, updated_at=registered,
                ))
                registered += datetime.timedelta(days=rng.uniform(1, 60))
        return batch, next_name

    def insert_batch(self, rng, batch, owners, moderator) -> int:
        names = {}
        for r in batch:
            names.setdefault(r.name, ModelName(name=r.name, owner=r.owner,
                                               created_at=r.registered_at))
        taken = set(ModelName.objects.filter(name__in=names).values_list("name", flat=True))
        batch = [r for r in batch if r.name not in taken]
        ModelName.objects.bulk_create([m for n, m in names.items() if n not in taken])
        Registration.objects.bulk_create(batch)

        usage, users, changes = [], [], []
        for r in batch:
            usage.append(self.usage_for(rng, r, owners, users))
            changes.extend(self.history_for(rng, r, moderator))
        UsageStats.objects.bulk_create(usage)
        ModelUser.objects.bulk_create(users)
        StatusChange.objects.bulk_create(changes)
        return len(batch)

    def usage_for(self, rng, registration, owners, users) -> UsageStats:
        if registration.status == Status.PENDING or rng.random() < 0.4:
            return UsageStats(registration=registration)
        total = int(rng.lognormvariate(4, 2)) + 1
        failed = int(total * rng.uniform(0, 0.1))
        callers = rng.sample(owners, min(total, rng.randint(1, 5)))
        users.extend(ModelUser(registration=registration, user=u,
                               first_used_at=registration.registered_at) for u in callers)
        return UsageStats(
            registration=registration, total_executions=total,
            successful_executions=total - failed, failed_executions=failed,
            total_fees_collected=total * 10, total_duration_us=total * rng.randint(500, 900_000),
            unique_users=len(callers),
            last_execution=registration.registered_at + datetime.timedelta(days=10),
        )

    def history_for(self, rng, registration, moderator) -> list[StatusChange]:
        """The status changes that lead to the generated status, as the services record them."""
        when = registration.registered_at
        owner = registration.owner
        moves = [("", Status.PENDING, owner, Source.API, "Registered")]
        final = registration.status
        if final == Status.REJECTED:
            moves.append((Status.PENDING, Status.REJECTED, moderator, Source.ADMIN,
                          "Missing license and model card."))
        elif final != Status.PENDING:
            moves.append((Status.PENDING, Status.APPROVED, moderator, Source.ADMIN, "Checked."))
            if final == Status.SUSPENDED:
                moves.append((Status.APPROVED, Status.SUSPENDED, moderator, Source.ADMIN,
                               "Reported outputs under review."))
            elif final == Status.DEPRECATED:
                moves.append((Status.APPROVED, Status.DEPRECATED, owner, Source.API,
                              "Superseded by a newer version."))
        changes = []
        for from_status, to_status, actor, source, reason in moves:
            changes.append(StatusChange(
                registration=registration, from_status=from_status, to_status=to_status,
                actor=actor, source=source, reason=reason, created_at=when))
            when += datetime.timedelta(hours=rng.uniform(1, 72))
        return changes

    # Scenarios ----------------------------------------------------------------------------

    def scenarios(self) -> list[Scenario]:
        """Requests as an anonymous client would make them, built from the data."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT name FROM (SELECT DISTINCT name FROM models_app_registration "
                "WHERE status = %s) approved ORDER BY random() LIMIT 5000",
                [Status.APPROVED])
            names = [row[0] for row in cursor.fetchall()]
        if not names:
            raise CommandError("The bench database holds no approved registration.")
        owners = [f"bench-owner-{i:03d}" for i in range(OWNERS)]
        sizes = [(0, 10 * MB), (10 * MB, 100 * MB), (100 * MB, 1000 * MB), (MB, 50 * MB)]

        def models(**query):
            return "/api/v1/models/?" + urlencode(query)

        def by_owner(rng):
            low, high = rng.choice(sizes)
            return models(owner=rng.choice(owners), size_min=low, size_max=high)

        return [
            Scenario("get-by-name", GET_BY_NAME_TARGET,
                     lambda rng: f"/api/v1/models/{rng.choice(names)}/"),
            Scenario("search+category, newest", SEARCH_TARGET, lambda rng: models(
                search=rng.choice(SEARCH_WORDS), category=rng.choice(Category.values),
                ordering="-registered_at")),
            Scenario("search, best match", SEARCH_TARGET,
                     lambda rng: models(search=rng.choice(SEARCH_WORDS))),
            Scenario("tag+category", SEARCH_TARGET, lambda rng: models(
                tag=rng.choice(TAGS), category=rng.choice(Category.values))),
            Scenario("owner+size range", SEARCH_TARGET, by_owner),
        ]

    # gunicorn -----------------------------------------------------------------------------

    def start_gunicorn(self, workers: int, threads: int, log):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "registry_site.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "DJANGO_LOG_LEVEL": "WARNING",
            "THROTTLE_ANON": UNTHROTTLED,
            "THROTTLE_USER": UNTHROTTLED,
        }
        command = [sys.executable, "-m", "gunicorn", "registry_site.wsgi",
                   "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
                   "--chdir", str(settings.BASE_DIR), "--log-level", "warning"]
        if threads > 1:
            command += ["--threads", str(threads), "--keep-alive", "30"]
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if server.poll() is not None:
                log.seek(0)
                raise CommandError("gunicorn exited at start:\n"
                                   + log.read().decode(errors="replace")[-3000:])
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                probe.request("GET", "/healthz")
                if probe.getresponse().status == 200:
                    probe.close()
                    self.stdout.write(f"gunicorn: {workers} worker(s) x {threads} thread(s) "
                                      f"on 127.0.0.1:{port}, /healthz answers 200.")
                    return server, port
                probe.close()
            except OSError:
                pass
            time.sleep(0.2)
        self.stop_gunicorn(server)
        log.seek(0)
        raise CommandError("gunicorn did not answer /healthz within 30 s:\n"
                           + log.read().decode(errors="replace")[-3000:])

    @staticmethod
    def stop_gunicorn(server) -> None:
        if server.poll() is not None:
            return
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    # Load ---------------------------------------------------------------------------------

    def drive(self, port: int, scenario: Scenario, seconds: float, concurrency: int) -> Result:
        """Run ``scenario`` from ``concurrency`` threads; count what finishes in the window."""
        warmup = min(2.0, max(0.5, seconds / 5))
        self.stdout.write(f"Running {scenario.label}: {warmup:.1f} s warm-up, {seconds:g} s "
                          f"measured, {concurrency} connections ...")
        start = time.monotonic() + warmup
        stop = start + seconds
        results = [Result() for _ in range(concurrency)]
        threads = [threading.Thread(target=self.client, args=(port, scenario, start, stop, r, i))
                   for i, r in enumerate(results)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        total = Result()
        for r in results:
            total.requests += r.requests
            total.latencies.extend(r.latencies)
            total.errors.update(r.errors)
            total.connections += r.connections
        return total

    @staticmethod
    def client(port, scenario, start, stop, result, seed) -> None:
        rng = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Accept": "application/json", "Host": "127.0.0.1"}
        while True:
            began = time.monotonic()
            if began >= stop:
                break
            if conn.sock is None:
                result.connections += 1
            try:
                conn.request("GET", scenario.path(rng), headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
                if response.will_close:
                    # gunicorn's sync worker closes after each answer; http.client reconnects.
                    conn.close()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                status = type(exc).__name__
            ended = time.monotonic()
            if began < start or ended > stop:
                continue
            if status == 200:
                result.requests += 1
                result.latencies.append(ended - began)
            else:
                result.errors[str(status)] += 1
        conn.close()

    # Report -------------------------------------------------------------------------------

    def report(self, results, *, rows: int, options) -> None:
        cores = os.cpu_count()
        self.stdout.write("")
        self.stdout.write(f"Machine: {cores} cores (nproc), PostgreSQL database "
                          f"{settings.DATABASES['default']['NAME']}, {rows} registrations.")
        self.stdout.write(
            f"Server: gunicorn, {options['workers']} worker(s) x {options['threads']} "
            f"thread(s), DEBUG off. Client: {options['concurrency']} threads in this process, "
            f"{options['seconds']:g} s per scenario.")
        self.stdout.write(self.style.WARNING(
            "The load generator, gunicorn, PostgreSQL and Redis all share these cores, so the "
            "server gets less than the whole machine: figures are a floor."))
        header = (f"{'scenario':<26} {'requests':>8} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7} "
                  f"{'p99 ms':>7} {'errors':>6} {'conns':>6}  target")
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        for scenario, result in results:
            rate = result.requests / options["seconds"]
            p50, p95, p99 = (percentile(result.latencies, q) * 1000 for q in (50, 95, 99))
            met = rate >= scenario.target
            verdict = (self.style.SUCCESS("met") if met else self.style.ERROR(
                f"not met ({rate / scenario.target:.0%} of target)"))
            self.stdout.write(
                f"{scenario.label:<26} {result.requests:>8} {rate:>8.0f} {p50:>7.1f} "
                f"{p95:>7.1f} {p99:>7.1f} {sum(result.errors.values()):>6} "
                f"{result.connections:>6}  {scenario.target}/s {verdict}")
            for error, count in result.errors.most_common(5):
                self.stdout.write(f"    error {error}: {count}")
        self.stdout.write("Only 200 answers count as requests; 'conns' is how many TCP "
                          "connections the clients opened (the sync worker closes after "
                          "each answer).")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]
