# The two commands a newcomer needs: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
export DJANGO_SETTINGS_MODULE := registry_site.settings

.PHONY: run test install lint benchmark benchmark-scanner failover-check

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

install: $(PY)
	$(PY) -m pip install --quiet -e .

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) manage.py runserver 127.0.0.1:8000

test: $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	$(VENV)/bin/ruff check .
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest $(PYTEST_ARGS)

# Load benchmark (issue 3) on its own PostgreSQL database and Redis db; never the real registry.
# The data stays in $(BENCH_DB) and is reused; `dropdb -h 127.0.0.1 -U postgres ai_registry_bench`
# removes it. Options: make benchmark BENCH_ARGS="--rows 200000 --seconds 20".
BENCH_DB ?= ai_registry_bench
BENCH_ENV := DATABASE_URL=postgres://postgres@127.0.0.1:5432/$(BENCH_DB) \
	REDIS_URL=redis://127.0.0.1:6379/5
BENCH_ARGS ?=

benchmark: $(PY)
	psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$(BENCH_DB)'" \
		| grep -q 1 || createdb -h 127.0.0.1 -U postgres $(BENCH_DB)
	$(BENCH_ENV) $(PY) manage.py migrate --noinput
	$(BENCH_ENV) $(PY) manage.py benchmark_registry $(BENCH_ARGS)

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
