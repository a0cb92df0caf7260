"""Content checks for uploaded artifacts: what the file is, and whether loading it could run code.

Nothing here executes or unpickles the upload. Pickle streams are scanned at the opcode level
by picklescan (maintained, walks the opcodes with ``pickletools.genops`` without executing,
follows memo references for ``STACK_GLOBAL``, copes with the relaxed zip layout PyTorch
writes); on top of its deny-list this module applies an allow-list, so a pickle may import
only what plain tensors and arrays need. Refusals raise ``ScanRefused``; acceptance returns a
``ScanReport`` that the artifact row keeps.
"""

import ast
import json
import math
import struct
import zipfile
from dataclasses import dataclass
from importlib.metadata import version
from typing import IO

from picklescan.relaxed_zipfile import RelaxedZipFile
from picklescan.scanner import SafetyLevel, scan_pickle_bytes

SCANNER = f"picklescan {version('picklescan')} + registry checks 1"

# First bytes of files the operating system would run.
EXECUTABLE_MAGIC = [
    (b"\x7fELF", "an ELF executable"),
    (b"MZ", "a Windows/DOS executable (MZ)"),
    (b"\xfe\xed\xfa\xce", "a Mach-O executable (32-bit, big-endian)"),
    (b"\xce\xfa\xed\xfe", "a Mach-O executable (32-bit, little-endian)"),
    (b"\xfe\xed\xfa\xcf", "a Mach-O executable (64-bit, big-endian)"),
    (b"\xcf\xfa\xed\xfe", "a Mach-O executable (64-bit, little-endian)"),
    (b"\xca\xfe\xba\xbe", "a Mach-O universal (fat) binary"),
    (b"\xbe\xba\xfe\xca", "a Mach-O universal (fat) binary, little-endian"),
    (b"\xca\xfe\xba\xbf", "a Mach-O universal (fat64) binary"),
    (b"\xbf\xba\xfe\xca", "a Mach-O universal (fat64) binary, little-endian"),
    (b"#!", "a script with a #! interpreter line"),
]

# Compressed or archive formats whose contents could hide a pickle this scanner cannot reach.
UNSCANNABLE_MAGIC = [
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!\x1a\x07", "RAR"),
]

ZIP_MAGIC = b"PK\x03\x04"
NUMPY_MAGIC = b"\x93NUMPY"
PICKLE_PROTOCOL_MAGIC = tuple(bytes([0x80, n]) for n in range(2, 6))

# What a pickle may import: the constructors of tensors, arrays and plain containers.
SAFE_GLOBALS = {
    "collections": {"OrderedDict"},
    "builtins": {"set", "frozenset", "complex", "bytearray", "slice", "range"},
    "_codecs": {"encode"},
    "numpy": {"dtype", "ndarray"},
    "numpy.core.multiarray": {"_reconstruct", "scalar"},
    "numpy._core.multiarray": {"_reconstruct", "scalar"},
    "torch": {
        "Size", "device",
        "BFloat16Storage", "BoolStorage", "ByteStorage", "CharStorage", "ComplexDoubleStorage",
        "ComplexFloatStorage", "DoubleStorage", "FloatStorage", "HalfStorage", "IntStorage",
        "LongStorage", "ShortStorage", "QInt32Storage", "QInt8Storage", "QUInt8Storage",
        "QUInt2x4Storage", "QUInt4x2Storage",
    },
    "torch._utils": {"_rebuild_tensor_v2", "_rebuild_parameter"},
}

# Safetensors element sizes in bits (sub-byte float formats included).
SAFETENSORS_DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32, "I64": 64, "U64": 64, "F64": 64, "C64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}
# The safetensors library refuses larger headers too.
SAFETENSORS_MAX_HEADER = 100_000_000

MAX_ZIP_MEMBERS = 10_000
# A zip may expand to at most this many times its own size (and at least 64 MiB): a bound on
# the work a zip bomb can cause.
MAX_ZIP_EXPANSION = 20
MAX_NPY_HEADER = 1_048_576


class ScanRefused(Exception):
    """The file is refused; ``reason`` is a stable word, ``message`` says why in English."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class ScanReport:
    file_format: str
    summary: str
    scanner: str = SCANNER


def scan_artifact(file: IO[bytes], *, size: int, filename: str = "") -> ScanReport:
    """Classify a seekable binary file and refuse what could run code when loaded."""
    file.seek(0)
    head = file.read(512)
    _refuse_executable(head, "The file")
    _refuse_unscannable(head, "The file")
    notes = []
    file_format = None

    if _claims_safetensors(head, size=size, filename=filename):
        notes.append(_check_safetensors(file, size=size))
        file_format = "safetensors"

    file.seek(0)
    if head.startswith(ZIP_MAGIC) or zipfile.is_zipfile(file):
        zip_format, zip_note = _scan_zip(file, size=size)
        file_format = file_format or zip_format
        notes.append(zip_note)
    elif file_format is None:
        file.seek(0)
        if head.startswith(NUMPY_MAGIC):
            file_format = "numpy-npy"
            notes.append(_scan_npy(file, "the file"))
        else:
            allowed = _scan_pickle(file, "the file")
            is_pickle = bool(allowed) or head.startswith(PICKLE_PROTOCOL_MAGIC)
            file_format = "pickle" if is_pickle else "gguf" if head[:4] == b"GGUF" else "binary"
            notes.append(_pickle_note("pickle" if is_pickle else "pickle scan", allowed))

    notes.insert(0, "no executable or unscannable-archive signature")
    return ScanReport(file_format=file_format, summary="; ".join(notes) + ".")


def _refuse_executable(head: bytes, what: str) -> None:
    for magic, description in EXECUTABLE_MAGIC:
        if head.startswith(magic):
            raise ScanRefused("executable", f"{what} is {description}; executables are refused.")


def _refuse_unscannable(head: bytes, what: str) -> None:
    for magic, name in UNSCANNABLE_MAGIC:
        if head.startswith(magic):
            raise ScanRefused(
                "unscannable",
                f"{what} is a {name} archive, whose contents cannot be scanned; upload the "
                "uncompressed file or a zip archive.",
            )
    if head[257:262] == b"ustar":
        raise ScanRefused("unscannable", f"{what} is a tar archive, whose contents cannot be "
                                         "scanned; upload the file itself or a zip archive.")


def _claims_safetensors(head: bytes, *, size: int, filename: str) -> bool:
    """Named .safetensors, or laid out like one: a length, then a JSON object."""
    if filename.lower().endswith(".safetensors"):
        return True
    return size >= 10 and head[8:10] in (b'{"', b"{}") and head[:4] != b"GGUF"


def _check_safetensors(file: IO[bytes], *, size: int) -> str:
    """Validate the header: 8-byte little-endian length, a JSON object within the file, and
    every tensor's dtype, shape and byte range consistent with the data that follows."""

    def refuse(message):
        raise ScanRefused("malformed_safetensors", f"Malformed safetensors header: {message}.")

    if size < 8:
        refuse("the file is shorter than the 8-byte header length")
    file.seek(0)
    (header_len,) = struct.unpack("<Q", file.read(8))
    if header_len > size - 8:
        refuse(f"the header length {header_len} exceeds the {size - 8} bytes that follow it")
    if header_len > SAFETENSORS_MAX_HEADER:
        refuse(f"the header length {header_len} exceeds {SAFETENSORS_MAX_HEADER} bytes")
    raw = file.read(header_len)
    if not raw.startswith(b"{"):
        refuse("the header does not start with a JSON object")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        refuse(f"the header is not valid UTF-8 JSON ({exc})")
    if not isinstance(header, dict):
        refuse("the header is not a JSON object")

    data_len = size - 8 - header_len
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            if not isinstance(info, dict) or not all(
                isinstance(v, str) for v in info.values()
            ):
                refuse("__metadata__ must map strings to strings")
            continue
        if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= info.keys():
            refuse(f"tensor {name!r} needs dtype, shape and data_offsets")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in SAFETENSORS_DTYPE_BITS:
            refuse(f"tensor {name!r} has unknown dtype {dtype!r}")
        if not isinstance(shape, list) or not all(
            type(d) is int and d >= 0 for d in shape
        ):
            refuse(f"tensor {name!r} has a shape that is not a list of non-negative integers")
        if (
            not isinstance(offsets, list) or len(offsets) != 2
            or not all(type(o) is int for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_len
        ):
            refuse(f"tensor {name!r} has data_offsets outside the {data_len}-byte data section")
        bits = math.prod(shape) * SAFETENSORS_DTYPE_BITS[dtype]
        if bits % 8 or offsets[1] - offsets[0] != bits // 8:
            refuse(f"tensor {name!r} spans {offsets[1] - offsets[0]} bytes, but {dtype} "
                   f"{shape} needs {bits / 8:g}")
        spans.append((offsets[0], offsets[1], name))

    # Tensors must tile the data section exactly: no overlap, no gap, nothing trailing.
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            refuse(f"tensor {name!r} starts at {begin}, expected {position} (gap or overlap)")
        position = end
    if position != data_len:
        refuse(f"the tensors cover {position} of the {data_len} data bytes")
    return f"safetensors header valid: {len(spans)} tensor(s), {data_len} data bytes"


def _scan_zip(file: IO[bytes], *, size: int) -> tuple[str, str]:
    """Every member of a zip (PyTorch .pt/.pth, NumPy .npz, any zip): no executables, no nested
    archives or encrypted members, and every pickle inside within the allow-list."""
    file.seek(0)
    try:
        archive = RelaxedZipFile(file)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ScanRefused("malformed_archive", f"The zip archive is malformed: {exc}.") from None
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) > MAX_ZIP_MEMBERS:
            raise ScanRefused("unscannable", f"The zip archive has {len(members)} members; at "
                                             f"most {MAX_ZIP_MEMBERS} are scanned.")
        expanded = sum(info.file_size for info in members)
        if expanded > MAX_ZIP_EXPANSION * max(size, 1 << 22):
            raise ScanRefused("unscannable", f"The zip archive expands to {expanded} bytes, "
                                             "too many to scan (a zip bomb?).")
        allowed = set()
        names = []
        for info in members:
            where = f"archive member {info.filename!r}"
            if info.flag_bits & 0x1:
                raise ScanRefused("unscannable", f"The {where} is encrypted and cannot be "
                                                 "scanned.")
            try:
                with archive.open(info) as member:
                    head = member.read(512)
                    _refuse_executable(head, f"The {where}")
                    _refuse_unscannable(head, f"The {where}")
                    if head.startswith(ZIP_MAGIC):
                        raise ScanRefused("unscannable", f"The {where} is itself a zip "
                                                         "archive; nested archives are refused.")
                with archive.open(info) as member:
                    if head.startswith(NUMPY_MAGIC):
                        _scan_npy(member, where)
                    else:
                        allowed |= _scan_pickle(member, where)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
                raise ScanRefused("malformed_archive",
                                  f"The {where} cannot be read: {exc}.") from None
            names.append(info.filename)
    if any(name.endswith("data.pkl") for name in names):
        file_format = "pytorch-zip"
    elif names and all(name.endswith(".npy") for name in names):
        file_format = "numpy-npz"
    else:
        file_format = "zip"
    return file_format, f"zip archive of {len(names)} members scanned; " + _pickle_note(
        "pickles inside", allowed)


def _scan_pickle(stream: IO[bytes], where: str) -> set[str]:
    """Scan pickle opcodes (several concatenated pickles included); refuse any import outside
    SAFE_GLOBALS; return the allowed imports found."""
    start = stream.tell()
    if not stream.read(1):
        # Nothing to scan (picklescan fails on an empty stream rather than finding nothing).
        return set()
    stream.seek(start)
    result = scan_pickle_bytes(stream, where)
    allowed, refused = set(), []
    for found in result.globals:
        dotted = f"{found.module}.{found.name}"
        if found.safety is not SafetyLevel.Dangerous and found.name in SAFE_GLOBALS.get(
            found.module, ()
        ):
            allowed.add(dotted)
        else:
            refused.append(dotted)
    if refused:
        raise ScanRefused(
            "unsafe_pickle",
            f"The pickle in {where} imports {', '.join(sorted(refused))}, outside the safe "
            "list (tensors, arrays and plain containers); loading it could run code.",
        )
    return allowed


def _scan_npy(stream: IO[bytes], where: str) -> str:
    """A .npy array: refuse a malformed header; scan the pickle that object arrays carry."""
    magic = stream.read(8)
    major = magic[6] if len(magic) == 8 else None
    if major == 1:
        length_format = "<H"
    elif major in (2, 3):
        length_format = "<I"
    else:
        raise ScanRefused("malformed_numpy", f"The .npy header of {where} is malformed.")
    raw_length = stream.read(struct.calcsize(length_format))
    (header_len,) = struct.unpack(length_format, raw_length.ljust(struct.calcsize(length_format),
                                                                  b"\0"))
    if header_len > MAX_NPY_HEADER:
        raise ScanRefused("malformed_numpy", f"The .npy header of {where} is too long.")
    try:
        header = ast.literal_eval(stream.read(header_len).decode("utf-8"))
        descr = header["descr"]
    except (ValueError, SyntaxError, UnicodeDecodeError, KeyError, TypeError,
            MemoryError, RecursionError):
        raise ScanRefused("malformed_numpy", f"The .npy header of {where} is malformed.") from None
    if not _descr_has_object(descr):
        return "numpy array without objects"
    return "numpy object array; " + _pickle_note("pickle", _scan_pickle(stream, where))


def _descr_has_object(descr) -> bool:
    """Whether a NumPy dtype description holds Python objects (stored as a pickle)."""
    if isinstance(descr, str):
        return descr.lstrip("<>|=").startswith("O")
    if isinstance(descr, list):
        return any(
            not isinstance(field, (list, tuple)) or len(field) < 2 or _descr_has_object(field[1])
            for field in descr
        )
    # Anything else is not a dtype NumPy writes: treat it as holding objects, so it is scanned.
    return True


def _pickle_note(what: str, allowed: set[str]) -> str:
    if not allowed:
        return f"{what}: no imports"
    return f"{what}: imports only {', '.join(sorted(allowed))} (allowed)"
