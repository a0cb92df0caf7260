"""The failover check's own parts: the HAProxy configuration it runs, and its database checks.

The check itself (deploy/failover_check.py, `make failover-check`, pass 3 of .ci/run) needs
HAProxy, PostgreSQL and Redis and takes about a minute, so it is not part of this suite. These
tests make sure that what it relies on holds: the configuration never replays a request that
was sent, and each database check fails on the damage it exists to find (a check that cannot
fail would let the failover test pass whatever happened).
"""

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db.models import F

from fees_app.models import Account
from governance_app.models import Proposal
from models_app.models import Registration, UsageStats

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "haproxy.cfg"


def load_check_module():
    spec = importlib.util.spec_from_file_location("failover_check",
                                                  ROOT / "deploy" / "failover_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fc = load_check_module()


def directives(name: str) -> list[list[str]]:
    lines = [line.split("#", 1)[0].split() for line in CONFIG.read_text().splitlines()]
    return [words[len(name.split()):] for words in lines if words[:len(name.split())]
            == name.split()]


def test_haproxy_retries_only_requests_that_were_never_sent():
    # Anything beyond conn-failure (empty-response, 502, ...) replays a request that may have
    # charged a fee on the host that died.
    assert directives("retry-on") == [["conn-failure"]]
    assert directives("option redispatch") == [["1"]]
    assert directives("retries") == [["3"]]
    assert not re.search(r"^\s*http-reuse\s+(aggressive|always)", CONFIG.read_text(), re.M)


def test_haproxy_checks_a_health_endpoint_of_the_app():
    (send,) = directives("http-check send")
    uri = send[send.index("uri") + 1]
    assert uri in {"/healthz", "/livez"}
    assert "Host" in send  # DJANGO_ALLOWED_HOSTS refuses a check without one
    assert len(directives("server")) >= 2


@pytest.mark.skipif(not (shutil.which("haproxy") or os.access("/usr/sbin/haproxy", os.X_OK)),
                    reason="haproxy is not installed (Debian: apt-get install -y haproxy)")
def test_haproxy_accepts_the_configuration(tmp_path):
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    env = {**os.environ, "AIR_HAPROXY_SOCKET": str(tmp_path / "admin.sock"),
           "AIR_HAPROXY_LOG": "stdout", "AIR_HAPROXY_LOG_FORMAT": "raw"}
    result = subprocess.run([binary, "-c", "-f", str(CONFIG)], env=env, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# Telling when the killed host is gone --------------------------------------------------------

# The main thread exits while another thread of the process lives on (a gthread worker being
# torn down): the process shows as a zombie, yet it still holds its open sockets.
HALF_DEAD = ("import ctypes, threading, time\n"
             "threading.Thread(target=time.sleep, args=(30,)).start()\n"
             "ctypes.CDLL(None).pthread_exit(None)\n")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_group_whose_main_thread_is_a_zombie_is_alive_while_a_thread_lives():
    child = subprocess.Popen([sys.executable, "-c", HALF_DEAD], start_new_session=True)
    try:
        stat = Path(f"/proc/{child.pid}/stat")
        deadline = time.monotonic() + 10
        while stat.read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline, "the main thread never exited"
            time.sleep(0.01)
        assert fc.group_alive(child.pid)
    finally:
        os.killpg(child.pid, 9)
        child.wait()
    assert not fc.group_alive(child.pid)


def test_an_address_refuses_only_once_nothing_listens():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        assert not fc.refuses(address)
    assert fc.refuses(address)


# The database checks, against a world seeded by the check's own seed -----------------------

def outcome(kind, user, request, status=201, body=None):
    # HAProxy's own 502 carries no X-Served-By: the answer was lost.
    return fc.Outcome(kind, user, request, started=1.0, finished=1.1, status=status,
                      served_by="app1" if status == 201 else None, body=body or {})


@pytest.fixture
def world(db):
    return fc.seed(users=2)


def test_an_intact_world_passes_every_check(world):
    facts = []
    assert fc.check_database(world, [], facts) == []
    assert len(facts) == 4


def test_a_balance_that_is_not_its_ledger_fails(world):
    Account.objects.filter(user__username="failover-user-00").update(balance=F("balance") - 1)
    assert any("ledger sum" in f for f in fc.check_ledgers([]))


def test_an_acknowledged_registration_that_is_missing_fails(world):
    name = world.names["failover-user-00"][0]
    sent = outcome("register", "failover-user-00", {"name": name, "version": "9.9.9"},
                   body={"registration_fee": 1500})
    failures = fc.check_registrations(world, [sent], [])
    assert any("acknowledged registration" in f and "9.9.9" in f for f in failures)


def test_a_registration_without_its_fee_fails(world):
    seeded = Registration.objects.get(name=world.names["failover-user-01"][1])
    Registration.objects.create(
        name=seeded.name, version="3.0.0", owner=seeded.owner, hash="a" * 64,
        size_bytes=1, parameter_count=1, registration_fee=700)
    world.seeded_registrations.add((seeded.name, "3.0.0"))
    failures = fc.check_registrations(world, [], [])
    assert any("3.0.0" in f and "ledger" in f for f in failures)


def test_a_lost_answer_counts_as_absent_and_a_record_nobody_sent_fails(world):
    lost = outcome("usage", "failover-user-00", {"name": world.approved[0][0],
                                                 "version": world.approved[0][1],
                                                 "tag": 123, "success": True}, status=502)
    facts = []
    assert fc.check_usage(world, [lost], facts) == []
    assert "0 present / 1 absent" in facts[0]


def test_usage_counters_that_are_not_the_ledger_fail(world):
    UsageStats.objects.filter(registration__name=world.approved[0][0]).update(
        total_executions=F("total_executions") + 1,
        successful_executions=F("successful_executions") + 1)
    assert any("usage counters" in f for f in fc.check_usage(world, [], []))


def test_a_tally_that_is_not_its_votes_fails(world):
    Proposal.objects.filter(pk=world.proposals[0]).update(votes_for=F("votes_for") + 5)
    assert any("tallies" in f for f in fc.check_votes(world, [], []))


def test_an_acknowledged_vote_that_is_missing_fails(world):
    sent = outcome("vote", "failover-user-01", {"proposal": world.proposals[0],
                                                "choice": "for"}, body={"weight": 1250})
    assert any("acknowledged vote" in f for f in fc.check_votes(world, [sent], []))
