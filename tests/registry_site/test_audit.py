"""The audit trail: a hash chain that verify_audit_log checks, and the moderators' API."""

import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from registry_site.audit import (
    AFTER_HEAD,
    ALTERED,
    GENESIS_HASH,
    NOT_LINKED,
    audit_record,
    audit_verify,
    event_digest,
)
from registry_site.models import AuditChainHead, AuditEvent
from tests.audit_helpers import sealed, tampering

pytestmark = pytest.mark.django_db


def record(n, **extra):
    return sealed([audit_record(action=f"test.event{i}", details={"i": i, **extra})
                   for i in range(n)])


def verify():
    return call_command("verify_audit_log")


def test_events_chain_each_to_the_one_before(user):
    record(4)
    sealed([audit_record(action="test.with_target", actor=user, target=user,
                         details={"nested": {"b": [1, 2], "a": "x"}}, ip="10.0.0.1")])
    chain = list(AuditEvent.objects.order_by("seq"))
    assert [e.seq for e in chain] == list(range(1, len(chain) + 1))
    assert chain[0].prev_hash == GENESIS_HASH
    for before, after in zip(chain, chain[1:], strict=False):
        assert after.prev_hash == before.hash
    assert len({e.hash for e in chain}) == len(chain)
    assert AuditChainHead.objects.get().last_hash == chain[-1].hash
    last = chain[-1]
    assert (last.actor, last.target_type, last.target_id, last.ip) == (
        user, "auth.user", str(user.pk), "10.0.0.1")


def test_verify_passes_on_an_intact_chain(capsys):
    record(5, text="é ünïcode", when=None, number=1.5)
    verify()
    assert "5 events verified" in capsys.readouterr().out
    assert audit_verify() == (5, None)


def test_verify_passes_on_an_empty_log(capsys):
    verify()
    assert "0 events verified" in capsys.readouterr().out


def test_details_are_stored_as_plain_json():
    from datetime import UTC, datetime

    event = audit_record(action="test.json",
                         details={"at": datetime(2030, 1, 1, tzinfo=UTC), "n": 10**15})
    event.refresh_from_db()
    assert event.details == {"at": "2030-01-01 00:00:00+00:00", "n": 10**15}
    sealed([event])
    verify()


@pytest.mark.parametrize("ip", ["::ffff:10.1.2.3", "2001:0DB8:0000::0001", "fe80::1",
                                "192.168.0.1"])
def test_any_client_address_keeps_the_chain_verifiable(ip):
    sealed([audit_record(action="test.ip", ip=ip), audit_record(action="test.after")])
    assert audit_verify() == (2, None)


def test_ipv4_mapped_client_through_the_api_keeps_the_chain(anon_client):
    anon_client.post("/api/v1/auth/tokens/", {"username": "ghost", "password": "x"},
                     format="json", REMOTE_ADDR="::ffff:10.1.2.3")
    assert AuditEvent.objects.filter(action="auth.login_failed").exists()
    assert audit_verify()[1] is None


def test_altered_details_are_detected():
    events = record(5)
    with tampering():
        AuditEvent.objects.filter(pk=events[2].pk).update(details={"i": 99})
    with pytest.raises(CommandError) as broken:
        verify()
    assert f"  event {events[2].pk}: {ALTERED}" in str(broken.value)
    assert "1 problem(s)" in str(broken.value)


@pytest.mark.parametrize("field", ["action", "actor_id", "target_id", "ip", "created_at"])
def test_any_altered_field_is_detected(field, user):
    from datetime import timedelta

    before = AuditEvent.objects.count()  # the user fixture's credit is audited
    events = record(3)
    target = AuditEvent.objects.filter(pk=events[1].pk)
    change = {"action": "test.forged", "actor_id": user.pk, "target_id": "42",
              "ip": "10.9.9.9", "created_at": events[1].created_at + timedelta(seconds=1)}
    with tampering():
        target.update(**{field: change[field]})
    checked, problem = audit_verify()
    assert checked == before + 3
    assert problem == f"event {events[1].pk}: {ALTERED}"


def test_a_rehashed_row_is_detected_by_its_successor():
    events = record(4)
    with tampering():
        AuditEvent.objects.filter(pk=events[1].pk).update(hash="f" * 64)
    checked, problem = audit_verify()
    assert checked == 4
    assert problem == f"event {events[1].pk}: {ALTERED}; event {events[2].pk}: {NOT_LINKED}"


def test_a_deleted_middle_row_is_detected():
    events = record(5)
    with tampering():
        AuditEvent.objects.filter(pk=events[2].pk).delete()
    with pytest.raises(CommandError) as broken:
        verify()
    assert f"event {events[3].pk}: {NOT_LINKED}" in str(broken.value)
    assert "1 problem(s)" in str(broken.value)


def test_a_deleted_first_row_is_detected():
    events = record(3)
    with tampering():
        AuditEvent.objects.filter(pk=events[0].pk).delete()
    checked, problem = audit_verify()
    assert checked == 2
    assert problem == f"event {events[1].pk}: {NOT_LINKED}"


def test_a_deleted_newest_row_is_detected():
    events = record(5)
    with tampering():
        AuditEvent.objects.filter(pk=events[-1].pk).delete()
    with pytest.raises(CommandError) as broken:
        verify()
    message = str(broken.value)
    assert "newest" in message
    assert f"after event {events[-2].pk}" in message  # the last event still intact


def rewrite(event, *, prev_hash, details):
    """Rewrite one row as someone with write access to the table would: new contents and a
    hash recomputed over them, so the row checks out on its own."""
    digest = event_digest(seq=event.seq, prev_hash=prev_hash, created_at=event.created_at,
                          actor_id=event.actor_id, action=event.action,
                          target_type=event.target_type, target_id=event.target_id,
                          ip=event.ip, details=details)
    with tampering():
        AuditEvent.objects.filter(pk=event.pk).update(prev_hash=prev_hash, details=details,
                                                      hash=digest)
    return digest


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "from-event-1"])
def test_rows_behind_a_head_moved_back_are_named(fork, capsys):
    events = record(5)
    # The head goes back to event 1 and every later row is rewritten: from a fork (a chain
    # that never contained event 1) or chained onto event 1 itself.
    prev = "a" * 64 if fork else events[0].hash
    for event in events[1:]:
        prev = rewrite(event, prev_hash=prev, details={"forged": event.pk})
    AuditChainHead.objects.update(last_hash=events[0].hash)
    with pytest.raises(CommandError) as broken:
        verify()
    message = str(broken.value)
    first, second, last = events[1].pk, events[2].pk, events[-1].pk
    if fork:
        assert f"  event {first}: {NOT_LINKED}\n  events {second}-{last}: {AFTER_HEAD}" in message
    else:
        assert f"  events {first}-{last}: {AFTER_HEAD}" in message
    assert "Audit log is broken (5 events read" in message
    assert "intact" not in capsys.readouterr().out


def test_a_head_moved_back_to_the_genesis_hash_is_detected():
    events = record(2)
    AuditChainHead.objects.update(last_hash=GENESIS_HASH)
    assert audit_verify() == (2, f"events {events[0].pk}-{events[1].pk}: {AFTER_HEAD}")


def test_every_defect_is_reported_not_only_the_first():
    events = record(6)
    with tampering():
        AuditEvent.objects.filter(pk=events[1].pk).update(details={"i": 99})
        AuditEvent.objects.filter(pk=events[4].pk).delete()
    assert audit_verify() == (5, f"event {events[1].pk}: {ALTERED}; "
                                 f"event {events[5].pk}: {NOT_LINKED}")


def test_every_row_deleted_is_detected():
    record(3)
    with tampering():
        AuditEvent.objects.all().delete()
    with pytest.raises(CommandError):
        verify()


def test_audit_events_api_as_anonymous_user_and_moderator(anon_client, user_client,
                                                          moderator_client):
    record(3)
    assert anon_client.get("/api/v1/audit-events/").status_code == 401
    refused = user_client.get("/api/v1/audit-events/")
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    response = moderator_client.get("/api/v1/audit-events/")
    assert response.status_code == 200
    data = response.json()
    assert set(data) >= {"next", "previous", "results"}
    rows = data["results"]
    assert rows == sorted(rows, key=lambda r: -r["id"])
    assert set(rows[0]) == {"id", "created_at", "actor", "action", "target_type", "target_id",
                            "ip", "details", "seq", "prev_hash", "hash"}
    filtered = moderator_client.get("/api/v1/audit-events/?action=test.event1").json()
    assert [r["action"] for r in filtered["results"]] == ["test.event1"]
    one = moderator_client.get(f"/api/v1/audit-events/{rows[0]['id']}/")
    assert one.status_code == 200


def test_audit_events_api_is_read_only(moderator_client):
    event = record(1)[0]
    assert moderator_client.delete(f"/api/v1/audit-events/{event.pk}/").status_code == 405
    assert moderator_client.post("/api/v1/audit-events/", {}, format="json").status_code == 405
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_audit_admin_is_read_only_for_moderators(client, moderator):
    event = record(1)[0]
    client.force_login(moderator)
    assert client.get("/admin/registry_site/auditevent/").status_code == 200
    assert client.get(f"/admin/registry_site/auditevent/{event.pk}/change/").status_code == 200
    assert client.post(f"/admin/registry_site/auditevent/{event.pk}/delete/").status_code == 403
    assert client.get("/admin/registry_site/auditevent/add/").status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_writers_keep_one_unbroken_chain():
    threads_count, per_thread = 12, 10
    barrier = threading.Barrier(threads_count)
    errors = []

    def write(n):
        try:
            barrier.wait()
            for i in range(per_thread):
                audit_record(action="test.concurrent", details={"thread": n, "i": i})
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert audit_verify() == (threads_count * per_thread, None)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_verifying_while_events_are_appended_reports_no_false_tampering():
    audit_record(action="test.first")
    stop = threading.Event()
    problems = []

    def write():
        try:
            for i in range(300):
                audit_record(action="test.live", details={"i": i})
        finally:
            stop.set()
            connection.close()

    def check():
        try:
            while not stop.is_set():
                problem = audit_verify()[1]
                if problem:
                    problems.append(problem)
        finally:
            connection.close()

    threads = [threading.Thread(target=write), threading.Thread(target=check)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == []
    assert audit_verify() == (301, None)


def test_a_deleted_chain_head_is_detected():
    record(2)
    AuditChainHead.objects.all().delete()
    assert "head" in audit_verify()[1]


def test_audit_events_list_query_count_is_fixed(moderator, client_for,
                                                django_assert_max_num_queries):
    api = client_for(moderator, scopes=["moderate"])
    api.get("/api/v1/audit-events/")  # warm: last_used_at is written once
    for i in range(10):
        audit_record(action="test.many", actor=moderator, details={"i": i})
    # token lookup, moderator group check, the page of events with their actors
    with django_assert_max_num_queries(3):
        assert len(api.get("/api/v1/audit-events/").json()["results"]) > 10


def test_null_characters_are_dropped_from_details(db):
    event = audit_record(action="security.ip_refused",
                         details={"path": "/api/\x00x", "nested": ["a\x00b"]})
    event = sealed([event])[0]
    assert event.details == {"path": "/api/x", "nested": ["ab"]}
    assert audit_verify() == (1, None)
