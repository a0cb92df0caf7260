"""Production gunicorn configuration: ``gunicorn -c gunicorn.conf.py registry_site.wsgi``.

Every value can be changed from the environment (GUNICORN_*), so one file serves a laptop, a
2-core VM and a larger host. The defaults were measured with ``make bench`` on a 2-core
machine (README, "Benchmark"): see the worker-class note below.
"""

import gc
import os


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def _on(name: str, default: str = "1") -> bool:
    return os.environ.get(name, default).strip().lower() not in {"0", "false", "no", "off"}


# Where to listen. Behind HAProxy or nginx this is a private address.
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000").split(",")
# Each worker listens on its own socket of the address (SO_REUSEPORT) and the kernel spreads
# new connections over them. With one shared socket, whichever worker was first to accept
# took them: a proxy's or client's pool of long-lived keep-alive connections could all land
# on one worker, which then served at a third of the host's rate while the others idled
# (measured with 16 connections on 2 workers, README "Benchmark"). When a worker is
# replaced (max_requests) the connections still queued on its socket are reset unless the
# kernel moves them to a sibling: set the sysctl net.ipv4.tcp_migrate_req=1 (Linux 5.14+).
reuse_port = _on("GUNICORN_REUSE_PORT")

# One process per core. The app is CPU-bound in Python (serializers, the ORM) and waits on
# PostgreSQL and Redis only briefly, so more processes than cores just take turns on them;
# a request that waits on a row lock holds its worker, which is why the writes keep
# their transactions short instead of the config adding workers.
workers = _int("GUNICORN_WORKERS", os.cpu_count() or 1)

# gthread with a few threads per worker: keeps client and proxy connections alive (the sync
# worker closes every connection after one answer, so each request pays a TCP handshake and
# a new accept) and lets a worker answer /livez or a cached read while another thread waits
# on the database. Measured on 2 cores, see README "Benchmark".
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = _int("GUNICORN_THREADS", 4)

# Idle keep-alive connections are held this long; above the proxy's own idle timeout would
# only hold sockets the proxy already dropped, well below it costs reconnects.
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# A request that runs longer than this is killed and its worker replaced (uploads stream
# and are bounded by max_model_size, so they fit); graceful stops wait as long.
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)

# Load Django once in the master and fork the workers from it: a worker replaced under
# max_requests starts in milliseconds instead of re-importing Django (about 1.5 s of CPU,
# then a cold worker), and the workers share the loaded code's memory. Nothing connects to
# PostgreSQL or Redis at import time (connections open on first use, in each worker). A code
# deployment therefore restarts the master (not just HUP).
preload_app = _on("GUNICORN_PRELOAD")

# Replace each worker after about this many requests, staggered by the jitter so that the
# workers do not all restart at once: bounds any slow memory growth. High enough that a
# busy worker restarts every ten minutes or so, not every few seconds (/livez alone reaches
# thousands per second): a new worker's first requests compile its queries, prepare its
# statements and open its connections again, and were the slowest of a benchmark's run.
max_requests = _int("GUNICORN_MAX_REQUESTS", 500_000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 50_000)

# The heartbeat file on tmpfs: on a disk-backed /tmp a slow fsync can make the master
# think a busy worker hung.
worker_tmp_dir = os.environ.get("GUNICORN_WORKER_TMP_DIR",
                                "/dev/shm" if os.path.isdir("/dev/shm") else None)

# Access log off by default: the proxy in front logs every request already, and a line per
# request is a measurable share of a fast request. GUNICORN_ACCESS_LOG=- writes to stdout.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = os.environ.get("GUNICORN_ERROR_LOG", "-")
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")

# Addresses whose X-Forwarded-* headers gunicorn trusts (the proxy); Django decides on the
# client address itself (TRUSTED_PROXY_COUNT).
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")


# The garbage collector's full passes walk every tracked object: with Django and the app
# loaded that is over 100,000 of them, about 60 ms each pass on this machine class, which a
# request that triggers one waits for (the p99 of a benchmark). Objects loaded before the
# workers fork live as long as the process, so they are moved out of the collector's reach
# (gc.freeze): a full pass then walks only what a worker made since, under a millisecond.
# Freezing in the master, before the forks, leaves the shared pages shared.
def when_ready(server):
    if preload_app:
        gc.collect()
        gc.freeze()


def post_worker_init(worker):
    if not preload_app:
        gc.freeze()  # the app was loaded in this worker
