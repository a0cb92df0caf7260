"""``make fuzz``: Schemathesis over every operation of the live schema, and a generated client.

On its own resources, removed at the end whatever happens: a fresh PostgreSQL database
(migrated, with the demo data), a redis-server, and the production server (gunicorn with
gunicorn.conf.py, DEBUG off, rate limits raised so that the fuzzer is not refused). Then
Schemathesis reads ``/api/schema/`` and runs its coverage, fuzzing and stateful phases
(requests chained by the schema's links) with a fixed seed: once anonymous, once with a
token of the funded moderator holding every scope. Only the two operations that would
revoke the fuzzer's own token are left out. Last, openapi-python-client generates a Python
client from the same schema and benchmarks_app/client_flow.py runs a whole user flow with it,
every answer parsed. Exit status 1 if any of the three found a failure.
"""

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from benchmarks_app import runner

CHECKS = ("not_a_server_error", "status_code_conformance", "response_schema_conformance",
          "negative_data_rejection")
# DELETE /auth/tokens/{id}/ and POST /auth/tokens/revoke_all/ would sign the fuzzer out.
EXCLUDED_PATHS = r"/auth/tokens/(\{id\}/|revoke_all/)$"
MODERATOR = ("moderator", "moderator-demo-pass")
FUNDS = 10**12


class Command(BaseCommand):
    help = ("Fuzz the API with Schemathesis on a throw-away database and server: anonymous, "
            "then with a funded token holding every scope. Exit 1 on any failure.")

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--max-examples", type=int, default=30,
                            help="Test cases per operation and phase (default 30).")
        parser.add_argument("--postgres", default=os.environ.get(
            "FUZZ_PG_URL", "postgres://postgres@127.0.0.1:5432"),
            help="The PostgreSQL server (FUZZ_PG_URL); a database is created on it.")

    def handle(self, *args, **options):
        # The tools of this virtualenv (`.[fuzz]`), not whatever else the PATH holds.
        schemathesis = str(Path(sys.executable).with_name("schemathesis"))
        if not Path(schemathesis).exists():
            raise CommandError("schemathesis is not installed: pip install -e '.[fuzz]' "
                               "(make fuzz does).")
        if not Path(sys.executable).with_name("openapi-python-client").exists():
            raise CommandError("openapi-python-client is not installed: pip install -e "
                               "'.[fuzz]' (make fuzz does).")
        if options["max_examples"] < 1:
            raise CommandError("--max-examples must be at least 1.")
        base_dir = Path(settings.BASE_DIR)
        database = f"ai_registry_fuzz_{os.getpid()}"
        server_url = options["postgres"].rstrip("/")
        with contextlib.ExitStack() as stack:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fuzz-")))
            log = stack.enter_context(open(work / "server.log", "wb"))
            redis, redis_url = runner.start_redis(log)
            stack.callback(redis.stop)
            self._create(server_url, database)
            stack.callback(self._drop, server_url, database)
            port = runner.free_port()
            env = runner.server_env(database_url=f"{server_url}/{database}",
                                    redis_url=redis_url, workers=2, worker_class="gthread",
                                    threads=4, port=port)
            # Plain HTTP on 127.0.0.1, no query counting, tasks in-process (no worker runs).
            for name in ("CELERY_BROKER_URL", "BENCH_QUERY_COUNT"):
                env.pop(name)
            env["DJANGO_SECURE_SSL_REDIRECT"] = "0"
            manage = [sys.executable, str(base_dir / "manage.py")]
            for command in (["migrate", "--noinput", "-v", "0"], ["seed_demo", "--force"],
                            ["credit_account", MODERATOR[0], str(FUNDS), "--reason",
                             "funds for the fuzzer"],
                            ["credit_account", "carol", str(FUNDS), "--reason",
                             "funds for the client flow"]):
                subprocess.run([*manage, *command], env=env, check=True, cwd=base_dir,
                               stdout=subprocess.DEVNULL)
            try:
                server = runner.start_gunicorn(base_dir, env, port, log)
            except RuntimeError as exc:
                log.flush()
                raise CommandError(f"{exc}:\n{(work / 'server.log').read_text()[-3000:]}") from None
            stack.callback(server.process.stop)
            token = self._token(server)
            failed = []
            for label, headers in (("anonymous", []),
                                   ("a funded moderator's token, every scope",
                                    ["-H", f"Authorization: Bearer {token}"])):
                self.stdout.write(f"=== Schemathesis, {label} ===")
                self.stdout.flush()
                done = subprocess.run([
                    schemathesis, "run", f"{server.base}/api/schema/", *headers,
                    "--checks", ",".join(CHECKS), "--phases", "coverage,fuzzing,stateful",
                    "--seed", str(options["seed"]), "--max-examples",
                    str(options["max_examples"]), "--exclude-path-regex", EXCLUDED_PATHS,
                    "--workers", "1", "--no-color",
                ], cwd=work)
                if done.returncode != 0:
                    failed.append(label)
            self.stdout.write("=== A client generated from the schema, a whole flow ===")
            self.stdout.flush()
            if not self._client_flow(server, work):
                failed.append("the generated client's flow")
            if failed:
                raise CommandError(f"Failures: {'; '.join(failed)}.")
            self.stdout.write("No failures: Schemathesis anonymous and with a token, and the "
                              "generated client's flow.")

    @staticmethod
    def _client_flow(server, work: Path) -> bool:
        """Generate the Python client with openapi-python-client from the live schema, then
        run benchmarks_app/client_flow.py with it."""
        generator = Path(sys.executable).with_name("openapi-python-client")
        generated = subprocess.run(
            [str(generator), "generate", "--url", f"{server.base}/api/schema/",
             "--output-path", str(work / "client"), "--overwrite"],
            cwd=work, env={**os.environ, "PATH": f"{generator.parent}:{os.environ['PATH']}"})
        if generated.returncode != 0:
            return False
        flow = subprocess.run(
            [sys.executable, str(Path(__file__).resolve().parents[2] / "client_flow.py"),
             server.base], env={**os.environ, "PYTHONPATH": str(work / "client")})
        return flow.returncode == 0

    @staticmethod
    def _create(server_url: str, database: str) -> None:
        with psycopg.connect(f"{server_url}/postgres", autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{database}"')

    @staticmethod
    def _drop(server_url: str, database: str) -> None:
        with psycopg.connect(f"{server_url}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    @staticmethod
    def _token(server) -> str:
        body = json.dumps({"username": MODERATOR[0], "password": MODERATOR[1],
                           "expires_in": 86_400, "name": "fuzzer"}).encode()
        request = urllib.request.Request(f"{server.base}/api/v1/auth/tokens/", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.load(answer)["token"]
