"""The pickle walker against CPython's own C unpickler: fuzzed pickles, and the false-refusal
rate on data that is not a pickle."""

import _compat_pickle
import io
import pickle
import random
from collections import OrderedDict

import numpy as np
import pytest

from models_app.scanning import DEFAULT_LIMITS, scan_artifact
from models_app.scanning.pickles import PickleLimits, ScanRefused, WalkState, walk_pickles
from tests.limits import address_space_cap


class Blocked(Exception):
    pass


class Recorder(pickle.Unpickler):
    """The C unpickler, with every import and persistent load recorded and stopped."""

    def __init__(self, file):
        super().__init__(file)
        self.imports = []

    def find_class(self, module, name):
        self.imports.append(f"{module}.{name}")
        raise Blocked

    def persistent_load(self, pid):
        raise Blocked


def py3_name(dotted: str) -> str:
    """The name find_class imports for protocols 0-2 (our Recorder sees it before mapping)."""
    module, name = dotted.rsplit(".", 1)
    module, name = _compat_pickle.NAME_MAPPING.get(
        (module, name), (_compat_pickle.IMPORT_MAPPING.get(module, module), name))
    return f"{module}.{name}"


def state():
    return WalkState(PickleLimits(max_opcodes=DEFAULT_LIMITS["SCAN_PICKLE_MAX_OPCODES"],
                                  max_stack=DEFAULT_LIMITS["SCAN_PICKLE_MAX_STACK"],
                                  max_memo=DEFAULT_LIMITS["SCAN_PICKLE_MAX_MEMO"]))


SEEDS = [
    pickle.dumps(value, protocol=protocol)
    for protocol in range(6)
    for value in ({"a": [1, 2.5, "x", None, True], "b": (1, (2, 3)), "c": b"\x00\xff" * 3},
                  [[], {}, (), "é", 10**30, -1.5, frozenset({1}), {2}],
                  OrderedDict(w=[0.5, 1.5], k="collections"))
] + [b"(I0x10\nL0x10L\n0tp0\ng0\n.", b"(lp0\n(dp1\nS'a'\np2\nI1\nsa.", b"\x80\x05N\x94h\x00\x86."]


def mutations(seed: bytes, rng: random.Random, count: int):
    alphabet = b"().0123NIJKLMSTUVXabcdeghijlopqrstu}]\x80\x85\x86\x87\x88\x8c\x93\x94\x95\n"
    for _ in range(count):
        data = bytearray(seed)
        for _ in range(rng.randint(1, 3)):
            position = rng.randrange(len(data) + 1)
            choice = rng.random()
            if choice < 0.4 and position < len(data):
                data[position] = rng.choice(alphabet)
            elif choice < 0.7:
                data.insert(position, rng.choice(alphabet))
            elif choice < 0.85 and position < len(data):
                del data[position]
            else:
                del data[position:]
        yield bytes(data)


def load_all(data: bytes) -> tuple[list[int], list[str]]:
    """pickle.load until the data ends or the unpickler raises: where each load stopped, and
    every import attempted."""
    stream, stops, imports = io.BytesIO(data), [], []
    while stream.tell() < len(data):
        unpickler = Recorder(stream)
        try:
            # A mutated length can make the unpickler allocate gigabytes before it finds the
            # data short: capped, that is a MemoryError, which ends the file like any error.
            with address_space_cap(1 << 30):
                unpickler.load()
        except Exception:  # the unpickler's own error ends the file
            imports += unpickler.imports
            break
        imports += unpickler.imports
        stops.append(stream.tell())
    return stops, imports


def test_walker_agrees_with_the_c_unpickler_on_fuzzed_pickles():
    """Where the walker calls data opaque, no load imports anything; where it finds a pickle,
    the first load stops at the same byte (or raises); every import a load attempts, the walker
    saw (and refused it, or found it allowed)."""
    rng = random.Random(8)
    opaque = pickles = 0
    for seed in SEEDS:
        for data in mutations(seed, rng, 150):
            walk_state = state()
            try:
                result = walk_pickles(io.BytesIO(data), size=len(data), state=walk_state,
                                      where="the file")
            except ScanRefused:
                result = None
            stops, imports = load_all(data)
            if result is None:
                continue
            assert {py3_name(name) for name in imports} <= walk_state.imports, data
            if not result.is_pickle:
                opaque += 1
                assert not imports, data
            else:
                pickles += 1
                assert not stops or stops[0] == result.first_stop, data
    assert opaque > 1000 and pickles > 300


def test_data_that_is_not_a_pickle_is_not_refused_for_looking_like_one():
    """Raw weights and random bytes: the walk from offset 0 stops at the unpickler's first
    error, so none of 40,000 blocks is refused (each would be a false refusal)."""
    rng = np.random.default_rng(8)
    blocks = [rng.bytes(4096) for _ in range(20_000)]
    blocks += [rng.normal(0, 0.02, 1024).astype(np.float32).tobytes() for _ in range(10_000)]
    blocks += [rng.normal(0, 0.02, 2048).astype(np.float16).tobytes() for _ in range(10_000)]
    # Two-byte executable magics (MZ, #!) are refused on purpose, wherever they appear.
    blocks = [block for block in blocks if block[:2] not in (b"MZ", b"#!")]
    refused = []
    for block in blocks:
        try:
            scan_artifact(io.BytesIO(block), size=len(block))
        except Exception as exc:  # any refusal counts
            refused.append((block[:16], exc))
    assert refused == []


@pytest.mark.parametrize("name, limit, data", [
    ("SCAN_PICKLE_MAX_STACK", 1000, b"N" * 1001 + b"."),
    ("SCAN_PICKLE_MAX_MEMO", 100, b"N" + b"\x94" * 101 + b"."),
    ("SCAN_PICKLE_MAX_OPCODES", 1000, b"N0" * 600 + b"N."),
])
def test_each_pickle_limit_refuses_as_unscannable(settings, name, limit, data):
    from models_app.scanning import ScanRefused

    setattr(settings, name, limit)
    with pytest.raises(ScanRefused) as caught:
        scan_artifact(io.BytesIO(data), size=len(data))
    assert caught.value.reason == "unscannable"
    assert name in caught.value.message


def test_zips_are_not_refused_for_what_their_headers_look_like():
    """A zip opens with "PK": PERSID, then a line of header bytes (times, CRCs, sizes) that
    the walk reads on. 3,000 zips of random members and timestamps are all accepted."""
    import zipfile

    rng = random.Random(3)
    refused = []
    for _ in range(3000):
        buffer = io.BytesIO()
        compression = rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
        with zipfile.ZipFile(buffer, "w", compression) as archive:
            for _ in range(rng.randint(1, 4)):
                when = (rng.randint(1980, 2030), rng.randint(1, 12), rng.randint(1, 28),
                        rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 58))
                data = rng.randbytes(rng.randint(1, 3000))
                if data[:2] in (b"MZ", b"#!"):  # executable magics are refused on purpose
                    data = b"\x00" + data
                info = zipfile.ZipInfo(f"archive/data/{rng.randint(0, 10**6)}", date_time=when)
                archive.writestr(info, data)
        try:
            scan_artifact(io.BytesIO(buffer.getvalue()), size=len(buffer.getvalue()))
        except Exception as exc:  # any refusal counts
            refused.append(exc)
    assert refused == []
