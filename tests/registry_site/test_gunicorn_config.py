"""gunicorn.conf.py: each worker listens on its own socket, so the kernel spreads connections.

With one listening socket shared by every worker, whichever worker accepted first kept the
connection for its whole keep-alive life: 16 long-lived connections all on one of two workers
cut the host's rate to a third (README, "Benchmark"). SO_REUSEPORT with a socket per worker
lets the kernel hash new connections over the workers instead.
"""

import os
import re
import runpy
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from benchmarks_app.runner import children_of

CONFIG = Path(settings.BASE_DIR) / "gunicorn.conf.py"


def load_config(monkeypatch, **env):
    for name in [n for n in os.environ if n.startswith("GUNICORN_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(CONFIG))


def test_reuse_port_is_on_unless_turned_off(monkeypatch):
    assert load_config(monkeypatch)["reuse_port"] is True
    assert load_config(monkeypatch, GUNICORN_REUSE_PORT="0")["reuse_port"] is False
    assert load_config(monkeypatch, GUNICORN_REUSE_PORT="off")["reuse_port"] is False
    assert load_config(monkeypatch, GUNICORN_PRELOAD="no")["preload_app"] is False


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    found = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:  # the process has just exited
        return found
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        match = re.fullmatch(r"socket:\[(\d+)\]", target)
        if match:
            found.add(match.group(1))
    return found


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="reads Linux's /proc")
def test_every_worker_listens_on_its_own_socket(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "2",
           "GUNICORN_LOG_LEVEL": "warning", "GUNICORN_WORKER_TMP_DIR": str(tmp_path),
           "DJANGO_SETTINGS_MODULE": "registry_site.settings"}
    env.pop("GUNICORN_REUSE_PORT", None)
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 (closed below)
    master = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(CONFIG),
                               "registry_site.wsgi"], cwd=settings.BASE_DIR, env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        per_worker = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and master.poll() is None:
            listening = _listening_inodes(port)
            workers = children_of(master.pid)
            per_worker = {pid: _socket_inodes(pid) & listening for pid in workers}
            if len(workers) == 2 and all(per_worker.values()):
                break
            time.sleep(0.2)
        assert master.poll() is None, (tmp_path / "gunicorn.log").read_text()
        assert len(per_worker) == 2 and all(per_worker.values()), per_worker
        first, second = per_worker.values()
        # Its own socket each, none shared (one inherited socket would be in both).
        assert first.isdisjoint(second)
        assert not _socket_inodes(master.pid) & _listening_inodes(port)
    finally:
        master.terminate()
        master.wait(timeout=30)
        log.close()
