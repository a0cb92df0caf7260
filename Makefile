# The two commands a newcomer needs: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
export DJANGO_SETTINGS_MODULE := registry_site.settings


.PHONY: run test install lint bench benchmark-scanner worker failover-check fuzz

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

install: $(PY)
	$(PY) -m pip install --quiet -e .

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) manage.py runserver 127.0.0.1:8000

# Background work on a broker: one Celery worker with beat in it (audit sealing every
# AUDIT_SEAL_INTERVAL_SECONDS, daily storage fees). Needs CELERY_BROKER_URL, e.g.
#   CELERY_BROKER_URL=amqp://guest:guest@127.0.0.1:5672// make worker
# Run beat in exactly one place: a second host runs `celery -A registry_site worker` alone.
WORKER_ARGS ?= --concurrency 2 --loglevel INFO

worker: install
	@test -n "$$CELERY_BROKER_URL" || { echo "make worker needs CELERY_BROKER_URL (amqp:// or redis://); without it tasks already run in-process" >&2; exit 1; }
	mkdir -p .cache
	$(VENV)/bin/celery -A registry_site worker -B --schedule .cache/celerybeat-schedule $(WORKER_ARGS)

test: $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	$(VENV)/bin/ruff check .
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest $(PYTEST_ARGS)

# Load benchmark (issue 9): seeds ai_registry_bench_<N> (one PostgreSQL database per size,
# reused by later runs; never the registry's), starts gunicorn with gunicorn.conf.py and its own
# redis-server, drives every scenario with wrk and writes bench/results/<time>-<N>.json.
# Options: make bench BENCH_ARGS="--quick" | "--models 1000" | "--compare 1000,100000".
BENCH_DB_PREFIX ?= ai_registry_bench
BENCH_ARGS ?=

bench: install
	BENCH_DB_PREFIX=$(BENCH_DB_PREFIX) $(PY) manage.py bench $(BENCH_ARGS)

# Scan benchmark (issue 8): peak memory and time per scan, 4/24/100 MiB files of every kind.
# Options: make benchmark-scanner SCAN_BENCH_ARGS="--sizes 4,24 --kinds npy,zip-bomb".
SCAN_BENCH_ARGS ?=

benchmark-scanner: install
	$(PY) manage.py benchmark_scanner $(SCAN_BENCH_ARGS)


# Several app hosts (issue 9): two gunicorn hosts behind HAProxy (deploy/haproxy.cfg), one
# SIGKILLed under a write load, then every acknowledged write and invariant checked. Needs
# haproxy, PostgreSQL and Redis; makes and drops its own database. Options:
# make failover-check FAILOVER_ARGS="--seconds 40 --clients 8".
FAILOVER_ARGS ?=

failover-check: install
	$(PY) deploy/failover_check.py $(FAILOVER_ARGS)

# API fuzzing (issue 10): Schemathesis over every operation of /api/schema/ on a throw-away
# PostgreSQL database and production server, anonymous and with a funded moderator's token.
# Options: make fuzz FUZZ_ARGS="--seed 7 --max-examples 100"; FUZZ_PG_URL names the server.
FUZZ_ARGS ?=

fuzz: install
	$(PY) -m pip install --quiet -e '.[fuzz]'
	$(PY) manage.py fuzz_api $(FUZZ_ARGS)
