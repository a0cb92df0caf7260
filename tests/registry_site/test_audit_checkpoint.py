"""Signed checkpoints: audit_checkpoint signs the newest event with a key kept out of the
database; verify_audit_log --checkpoint FILE proves the log still holds it."""

import json
import os
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from registry_site.audit import audit_record, checkpoint_key_id
from registry_site.models import AuditChainHead, AuditCheckpoint, AuditEvent
from tests.audit_helpers import sealed, tampering
from tests.registry_site.test_audit import rewrite

pytestmark = pytest.mark.django_db

KEY = "k" * 40


@pytest.fixture
def key(settings):
    settings.AUDIT_CHECKPOINT_KEY = KEY
    return KEY


def record(n):
    return sealed([audit_record(action=f"test.event{i}", details={"i": i}) for i in range(n)])


def checkpoint(tmp_path, name="checkpoint.json") -> tuple[dict, str]:
    out = StringIO()
    call_command("audit_checkpoint", stdout=out)
    path = tmp_path / name
    path.write_text(out.getvalue())
    return json.loads(out.getvalue()), str(path)


def verify(*files) -> str:
    out = StringIO()
    args = [arg for path in files for arg in ("--checkpoint", path)]
    call_command("verify_audit_log", *args, stdout=out)
    return out.getvalue()


def broken(*files) -> str:
    with pytest.raises(CommandError) as error:
        verify(*files)
    return str(error.value)


def test_a_checkpoint_is_printed_stored_and_verified(key, tmp_path):
    events = record(3)
    body, path = checkpoint(tmp_path)
    assert set(body) == {"format", "event_id", "hash", "created_at", "key_id", "hmac"}
    assert (body["event_id"], body["hash"]) == (events[-1].pk, events[-1].hash)
    assert body["key_id"] == checkpoint_key_id(KEY.encode())
    stored = AuditCheckpoint.objects.get()
    assert (stored.event_id, stored.hash, stored.hmac) == (body["event_id"], body["hash"],
                                                          body["hmac"])
    assert KEY not in json.dumps(body)
    record(2)  # events after the checkpoint are fine
    assert "5 events verified, 1 checkpoint(s) matched" in verify(path)


def test_no_key_refuses_to_checkpoint_with_what_to_set(settings):
    settings.AUDIT_CHECKPOINT_KEY = ""
    record(1)
    with pytest.raises(CommandError, match="in the environment of the hosts that run "
                                           "audit_checkpoint and verify_audit_log to a "
                                           "random secret of at least 32 characters"):
        call_command("audit_checkpoint", stdout=StringIO())
    assert not AuditCheckpoint.objects.exists()


def test_no_key_refuses_to_verify_a_checkpoint_file(key, settings, tmp_path):
    record(1)
    _, path = checkpoint(tmp_path)
    settings.AUDIT_CHECKPOINT_KEY = ""
    assert "Cannot check a checkpoint: AUDIT_CHECKPOINT_KEY is not set" in broken(path)


def test_a_broken_log_is_not_signed(key):
    events = record(3)
    with tampering():
        AuditEvent.objects.filter(pk=events[1].pk).update(details={"i": 9})
    with pytest.raises(CommandError, match=f"broken, so it is not signed: event {events[1].pk}"):
        call_command("audit_checkpoint", stdout=StringIO())
    assert not AuditCheckpoint.objects.exists()


def test_an_empty_log_has_nothing_to_sign(key):
    with pytest.raises(CommandError, match="empty"):
        call_command("audit_checkpoint", stdout=StringIO())


@pytest.mark.parametrize("field, value", [("hash", "0" * 64), ("event_id", 1),
                                          ("created_at", "2020-01-01T00:00:00+00:00")])
def test_a_tampered_file_is_refused(key, tmp_path, field, value):
    record(3)
    body, path = checkpoint(tmp_path)
    body[field] = value
    (tmp_path / "checkpoint.json").write_text(json.dumps(body))
    assert "its HMAC does not match its contents (the file was altered)" in broken(path)


def test_a_file_signed_with_another_key_is_refused(key, settings, tmp_path):
    record(2)
    _, path = checkpoint(tmp_path)
    settings.AUDIT_CHECKPOINT_KEY = "z" * 40
    message = broken(path)
    assert "it was signed with key" in message
    assert "the wrong key, or the file was altered" in message


@pytest.mark.parametrize("text, reason", [
    ("not json", "it is not JSON"),
    ("[]", "exactly the fields"),
    ('{"format": "x", "event_id": 1, "hash": "h", "created_at": "", "key_id": "", "hmac": ""}',
     "its format is 'x'"),
])
def test_a_file_that_is_not_a_checkpoint_is_refused(key, tmp_path, text, reason):
    path = tmp_path / "bad.json"
    path.write_text(text)
    assert reason in broken(str(path))
    assert f"Cannot read the checkpoint file {tmp_path}/missing" in broken(
        str(tmp_path / "missing"))


def test_truncation_with_the_head_moved_back_is_caught_by_the_checkpoint(key, tmp_path):
    events = record(5)
    _, path = checkpoint(tmp_path)
    # Someone with the database deletes the newest two events, moves the head back to the
    # event left newest and removes the stored checkpoint: the chain alone looks intact.
    with tampering():
        AuditEvent.objects.filter(pk__in=[events[3].pk, events[4].pk]).delete()
    AuditChainHead.objects.update(last_hash=events[2].hash)
    AuditCheckpoint.objects.all().delete()
    assert "3 events verified" in verify()
    message = broken(path)
    assert f"event {events[4].pk}, signed by the checkpoint of" in message
    assert "is no longer in the table (the log was truncated or the event deleted)" in message


def test_the_stored_checkpoint_catches_truncation_left_in_the_database(key, tmp_path):
    events = record(3)
    checkpoint(tmp_path)
    with tampering():
        AuditEvent.objects.filter(pk=events[2].pk).delete()
    AuditChainHead.objects.update(last_hash=events[1].hash)
    assert f"event {events[2].pk}, signed by the checkpoint" in broken()


def test_a_rewritten_and_resealed_chain_is_caught_by_the_checkpoint(key, tmp_path):
    events = record(4)
    _, path = checkpoint(tmp_path)
    AuditCheckpoint.objects.all().delete()
    # Every event from the second on is rewritten, rechained and the head moved to the new
    # end: nothing unkeyed can tell.
    prev = events[0].hash
    for event in events[1:]:
        prev = rewrite(event, prev_hash=prev, details={"forged": True})
    AuditChainHead.objects.update(last_hash=prev)
    assert "4 events verified" in verify()
    assert (f"event {events[-1].pk} has hash {prev[:16]}…, but the checkpoint of"
            in broken(path))


def test_a_short_key_stops_start_up():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "registry_site.settings",
           "AUDIT_CHECKPOINT_KEY": "short"}
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "AUDIT_CHECKPOINT_KEY must be at least 32 characters" in result.stderr
