"""Bounded cost: the opcode bomb that cost 2.5 GB and 31 s, and every scan limit, refused with
400 and nothing stored."""

import gzip
import io
import os
import zipfile

import pytest

from models_app.management.commands.benchmark_scanner import scan_in_child
from models_app.models import Artifact
from models_app.scanning import scan_artifact
from tests.security import factories as f
from tests.security.factories import refused

MIB = 1024 * 1024


def url(registration):
    return f"/api/v1/models/{registration.name}/versions/{registration.version}/artifact/"


def put(client, registration, body: bytes):
    return client.put(url(registration), data=body, content_type="application/octet-stream")



def bomb_zip() -> bytes:
    """24 MiB of one-byte opcodes as a torch data.pkl, deflated to a few KiB."""
    return f.zip_of({"archive/data.pkl": f.opcode_bomb(24 * MIB)}, zipfile.ZIP_DEFLATED)


def stored_files(settings) -> list:
    root = settings.MEDIA_ROOT / "artifacts"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.mark.django_db
def test_opcode_bomb_is_refused_with_400_and_nothing_stored(client_for, user, register,
                                                           settings):
    body = bomb_zip()
    assert len(body) < 64 * 1024
    registration = register(user, body)

    response = put(client_for(user), registration, body)

    assert response.status_code == 400
    assert response.json()["code"] == "artifact_refused"
    assert response.json()["reason"] == "unscannable"
    assert "SCAN_PICKLE_MAX_OPCODES" in response.json()["detail"]
    assert not Artifact.objects.exists()
    assert stored_files(settings) == []


@pytest.mark.django_db
def test_deep_json_safetensors_answers_400_not_500(client_for, user, register, settings):
    body = f.deep_json_safetensors()
    registration = register(user, body)
    response = client_for(user).put(
        url(registration), data=body, content_type="application/octet-stream",
        HTTP_CONTENT_DISPOSITION='attachment; filename="model.safetensors"')
    assert response.status_code == 400
    assert response.json()["reason"] == "malformed_safetensors"
    assert not Artifact.objects.exists()
    assert stored_files(settings) == []


def scan_grows(tmp_path, data: bytes) -> tuple[float, dict]:
    """Scan in a fresh process; how far its peak memory rose during the scan (MiB)."""
    path = tmp_path / "artifact"
    path.write_bytes(data)
    result = scan_in_child(str(path))
    return (result["peak_kib"] - result["before_kib"]) / 1024, result


def test_scan_memory_does_not_grow_with_the_file(tmp_path):
    grown, result = scan_grows(tmp_path, bomb_zip())
    assert result["outcome"].startswith("refused: unscannable")
    assert grown < 48, f"the opcode bomb grew the scanner by {grown:.0f} MiB"
    big = b"\x80\x04\x8e" + (48 * MIB).to_bytes(8, "little") + os.urandom(48 * MIB) + b"."
    grown, result = scan_grows(tmp_path, big)
    assert result["outcome"] == "accepted: pickle"
    assert grown < 16, f"a 48 MiB pickle grew the scanner by {grown:.0f} MiB"


def test_worst_case_walk_memory_is_bounded_by_the_limits():
    """The most a pickle can make the walk hold: a full stack of the longest strings it keeps,
    and memo indices spread far apart."""
    import struct
    import tracemalloc

    strings = b"\x80\x04" + (b"\x8c\x80" + b"a" * 128) * 99_990 + b"."
    spread = b"\x80\x04N" + b"".join(b"r" + struct.pack("<I", (1 << 24) + i * 7)
                                      for i in range(70_000)) + b"."

    def traced_peak(scan) -> int:
        tracemalloc.start()
        try:
            scan()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    def scan_strings():
        assert scan_artifact(io.BytesIO(strings), size=len(strings)).file_format == "pickle"

    refusals = []
    assert traced_peak(scan_strings) < 24 * MIB
    assert traced_peak(lambda: refusals.append(refused(spread))) < 8 * MIB
    refusal = refusals[0]
    assert refusal.reason == "unscannable"
    assert "2**24" in refusal.message


def test_millions_of_tiny_pickles_hit_the_opcode_limit():
    data = b"N." * (3 * MIB)
    refusal = refused(data)
    assert refusal.reason == "unscannable"
    assert "SCAN_PICKLE_MAX_OPCODES" in refusal.message


def test_member_count_limit(settings):
    settings.SCAN_MAX_MEMBERS = 3
    refusal = refused(f.zip_of({f"m{i}": b"\x00" for i in range(4)}))
    assert refusal.reason == "unscannable"
    assert "SCAN_MAX_MEMBERS" in refusal.message


@pytest.mark.parametrize("make", [
    lambda: f.zip_of({"zeros.bin": b"\x00" * (4 * MIB)}, zipfile.ZIP_DEFLATED),
    lambda: gzip.compress(b"\x00" * (4 * MIB)),
], ids=["zip", "gzip"])
def test_uncompressed_bytes_limit(settings, make):
    settings.SCAN_MAX_EXPANSION = 2
    settings.SCAN_UNCOMPRESSED_FLOOR = MIB
    refusal = refused(make())
    assert refusal.reason == "unscannable"
    assert "SCAN_MAX_EXPANSION" in refusal.message


def test_nesting_depth_limit(settings):
    data = f.benign_pickle()
    for _ in range(5):
        data = f.zip_of({"inner.zip": data})
    refusal = refused(data)
    assert refusal.reason == "unscannable"
    assert "SCAN_MAX_DEPTH" in refusal.message
    settings.SCAN_MAX_DEPTH = 6
    assert scan_artifact(io.BytesIO(data), size=len(data)).file_format == "zip"


def test_encrypted_member_is_refused():
    data = bytearray(f.zip_of({"data.pkl": f.benign_pickle()}))
    local, central = data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02")
    data[local + 6] |= 1
    data[central + 8] |= 1
    refusal = refused(bytes(data))
    assert refusal.reason == "unscannable"
    assert "encrypted" in refusal.message


def test_safetensors_header_limit(settings):
    settings.SCAN_SAFETENSORS_MAX_HEADER = 64
    refusal = refused(f.safetensors(), "model.safetensors")
    assert refusal.reason == "malformed_safetensors"
    assert "SCAN_SAFETENSORS_MAX_HEADER" in refusal.message


def test_duplicate_safetensors_keys_and_unknown_fields_are_refused():
    header = (b'{"t": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}, '
              b'"t": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}}')
    data = len(header).to_bytes(8, "little") + header + b"\x00" * 4
    assert "duplicate key 't'" in refused(data, "model.safetensors").message
    extra = f.safetensors({"t": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4],
                                 "run": "x"}}, b"\x00" * 4)
    assert "exactly dtype, shape and data_offsets" in refused(extra).message
