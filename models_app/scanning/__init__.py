"""Content checks for uploaded artifacts: a file is accepted only when all of it is understood.

Nothing here executes, imports or unpickles the upload. Formats are identified from the bytes,
never the name (except that a ``.safetensors`` name asks for the safetensors check), and a file
may be several things at once: every reading a common loader would take is checked.

* Every file, archive member and decompressed stream is walked as a pickle from offset 0 by
  ``pickles.walk_pickles`` (our own opcode walker, the rules and the fail-closed argument are
  in its docstring): ``pickle.load``, ``numpy.load(allow_pickle=True)`` and the legacy
  ``torch.load`` read the front of any file.
* ELF, PE (``MZ``), Mach-O and ``#!`` at the start of the file or of any member: refused.
* ``.npy``: NumPy's own header reader (``numpy.lib.format``), no object dtype in any spelling,
  and the data exactly ``prod(shape) * itemsize`` bytes.
* A zip (``PK\\x03\\x04`` at the start, or an end-of-central-directory record where ``zipfile``
  looks for one, so a junk prefix does not hide it): every member scanned by these same rules,
  recursively; ``__main__.py`` (a runnable ``.pyz``) and encrypted members refused. Zips are
  read with picklescan's ``RelaxedZipFile``, which opens PyTorch's layout as PyTorch does.
* gzip, bzip2, xz and legacy .lzma streams are decompressed (streaming, within the budget)
  and their content scanned by the same rules; zstd, lz4, 7z, RAR and tar cannot be scanned
  and are refused.
* Safetensors (by layout or name): bounded JSON header of the documented shape, no duplicate
  keys, tensors tiling the data exactly.
* A pickle, ``.npy``, safetensors or compressed file that is also a zip (a polyglot) is refused.

Every cost is bounded by settings (defaults below, documented in the README): opcodes walked,
symbolic stack and memo size, archive members, uncompressed bytes, nesting depth, header
sizes. Reaching a limit refuses the file (``unscannable``) rather than accepting it unscanned.
Memory stays flat: pickles are walked through a 64 KiB buffer, compressed members are spooled
to temporary files, stored members are read in place.
"""

import bz2
import json
import lzma
import math
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import PurePosixPath
from typing import IO

from django.conf import settings
from numpy.lib import format as npy_format

try:  # NumPy 2 keeps the implementation, with the version-3 header reader, here
    from numpy.lib._format_impl import _read_array_header
except ImportError:  # NumPy 1.26
    from numpy.lib.format import _read_array_header
from picklescan.relaxed_zipfile import RelaxedZipFile

from models_app.scanning.pickles import (
    SAFE_GLOBALS,
    PickleLimits,
    ScanRefused,
    WalkState,
    walk_pickles,
)

SCANNER = f"registry scanner 2 (numpy {version('numpy')}, picklescan {version('picklescan')})"

# Limits: Django settings of these names override the defaults.
DEFAULT_LIMITS = {
    # Opcodes walked over all pickles of one upload (a real torch data.pkl needs ~30 a tensor).
    "SCAN_PICKLE_MAX_OPCODES": 5_000_000,
    # Items plus marks on the unpickler's stack (Python's pickler batches 1,000 at a time).
    "SCAN_PICKLE_MAX_STACK": 100_000,
    # Distinct memo indices in one pickle (torch memoizes a few per tensor).
    "SCAN_PICKLE_MAX_MEMO": 1_000_000,
    # Members over all (nested) archives of one upload.
    "SCAN_MAX_MEMBERS": 10_000,
    # Uncompressed bytes over all members and decompressed streams: this many times the upload
    # size, and at least SCAN_UNCOMPRESSED_FLOOR (torch zips are stored, so about 1x).
    "SCAN_MAX_EXPANSION": 20,
    "SCAN_UNCOMPRESSED_FLOOR": 64 * 1024 * 1024,
    # Archives or compressed streams inside one another.
    "SCAN_MAX_DEPTH": 4,
    # The safetensors JSON header (real ones are well under 1 MiB).
    "SCAN_SAFETENSORS_MAX_HEADER": 16 * 1024 * 1024,
    # The .npy header, as numpy.load's own default.
    "SCAN_NPY_MAX_HEADER": 10_000,
}

CHUNK = 1024 * 1024

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


def _starts_with(magic: bytes):
    return lambda head: head.startswith(magic)


# The 13-byte header of a legacy .lzma ("LZMA alone") stream, which has no magic: what
# ``lzma.open`` reads by default besides xz. Properties byte lc/lp/pb (encoders write 0x5D),
# a dictionary size of 2^n or 2^n + 2^(n-1) bytes, an uncompressed size (-1 when unknown).
_LZMA_DICT_SIZES = {size for n in range(12, 31) for size in (1 << n, 3 << (n - 1))}


def _is_lzma_alone(head: bytes) -> bool:
    if len(head) < 13 or head[0] >= 9 * 5 * 5:
        return False
    dict_size, length = struct.unpack("<IQ", head[1:13])
    return dict_size in _LZMA_DICT_SIZES and (length == 2**64 - 1 or length < 2**48)


# Streams decompressed and scanned: how to recognise the front of one, name, decompressor
# factory, its error.
COMPRESSED_HEADER = 13  # bytes needed to recognise any of them
COMPRESSED = [
    (_starts_with(b"\x1f\x8b"), "gzip", lambda: zlib.decompressobj(wbits=31), zlib.error),
    (_starts_with(b"BZh"), "bzip2", bz2.BZ2Decompressor, OSError),
    (_starts_with(b"\xfd7zXZ\x00"), "xz", lambda: lzma.LZMADecompressor(format=lzma.FORMAT_XZ),
     lzma.LZMAError),
    (_is_lzma_alone, "lzma", lambda: lzma.LZMADecompressor(format=lzma.FORMAT_ALONE),
     lzma.LZMAError),
]
# Formats whose contents could hide a pickle this scanner cannot reach.
UNSCANNABLE_MAGIC = [
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!\x1a\x07", "RAR"),
]
ZIP_MAGIC = b"PK\x03\x04"
NUMPY_MAGIC = b"\x93NUMPY"

# Safetensors element sizes in bits (sub-byte float formats included).
SAFETENSORS_DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32, "I64": 64, "U64": 64, "F64": 64, "C64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}
SAFETENSORS_TENSOR_KEYS = {"dtype", "shape", "data_offsets"}

__all__ = ["SAFE_GLOBALS", "SCANNER", "ScanRefused", "ScanReport", "limit", "scan_artifact"]


@dataclass(frozen=True)
class ScanReport:
    file_format: str
    summary: str
    scanner: str = SCANNER


def limit(name: str) -> int:
    return getattr(settings, name, DEFAULT_LIMITS[name])


def scan_artifact(file: IO[bytes], *, size: int, filename: str = "") -> ScanReport:
    """Classify a seekable binary file of ``size`` bytes; refuse what is not fully understood."""
    scan = _Scan(size)
    file_format, notes = scan.stream(file, size=size, where="the file", depth=0,
                                     filename=filename)
    if scan.pickles.imports:
        notes.append("pickle imports only " + ", ".join(sorted(scan.pickles.imports))
                     + " (allowed)")
    return ScanReport(file_format=file_format, summary="; ".join(notes) + ".")


class _Window:
    """A read-only, seekable view of ``length`` bytes at ``start`` of another file."""

    def __init__(self, file: IO[bytes], start: int, length: int):
        self.file, self.start, self.length, self.position = file, start, length, 0

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.position, 2: self.length}[whence]
        self.position = max(0, base + offset)
        return self.position

    def read(self, n: int = -1) -> bytes:
        left = max(0, self.length - self.position)
        n = left if n is None or n < 0 else min(n, left)
        self.file.seek(self.start + self.position)
        data = self.file.read(n)
        self.position += len(data)
        return data


class _Scan:
    """One upload's scan: the budgets shared by every member and stream inside it."""

    def __init__(self, size: int):
        self.pickles = WalkState(PickleLimits(
            max_opcodes=limit("SCAN_PICKLE_MAX_OPCODES"),
            max_stack=limit("SCAN_PICKLE_MAX_STACK"),
            max_memo=limit("SCAN_PICKLE_MAX_MEMO"),
        ))
        self.members = 0
        self.expanded = 0
        self.max_expanded = max(limit("SCAN_MAX_EXPANSION") * size,
                                limit("SCAN_UNCOMPRESSED_FLOOR"))

    def stream(self, stream: IO[bytes], *, size: int, where: str, depth: int,
               filename: str = "") -> tuple[str, list[str]]:
        """Scan one file, member or decompressed stream; return its format and notes."""
        stream.seek(0)
        head = stream.read(512)
        _refuse_executable(head, where)
        if size == 0:
            return "empty", [f"{where} is empty"]
        walk = walk_pickles(stream, size=size, state=self.pickles, where=where)
        notes = []
        file_format = None
        if walk.is_pickle:
            file_format = "pickle"
            notes.append(f"{where}: {walk.count} pickle(s) walked to STOP, every import allowed")
        elif head.startswith(NUMPY_MAGIC):
            file_format = "numpy-npy"
            notes.append(_check_npy(stream, size=size, where=where))
        elif compressed := next((c for c in COMPRESSED if c[0](head)), None):
            file_format = compressed[1]
            notes.append(self.decompress(stream, compressed, where=where, depth=depth))
        else:
            _refuse_unscannable(head, where)
        if _claims_safetensors(head, size=size, filename=filename):
            notes.append(_check_safetensors(stream, size=size, where=where))
            file_format = file_format or "safetensors"
        if head.startswith(ZIP_MAGIC) or _has_zip_end_record(stream):
            if file_format is not None:
                raise ScanRefused("unscannable", f"{where.capitalize()} is both {file_format} "
                                                 "and a zip archive (a polyglot); refused.")
            file_format, note = self.zip(stream, size=size, where=where, depth=depth)
            notes.append(note)
        if file_format is None:
            file_format = "gguf" if head[:4] == b"GGUF" else "binary"
            notes.append(f"{where}: opaque data (not a pickle: {walk.note}), no executable "
                         "or archive signature")
        return file_format, notes

    def nest(self, where: str, depth: int) -> None:
        if depth >= limit("SCAN_MAX_DEPTH"):
            raise ScanRefused("unscannable", f"{where.capitalize()} is nested more than "
                                             f"{limit('SCAN_MAX_DEPTH')} archives or compressed "
                                             "streams deep (SCAN_MAX_DEPTH).")

    def expand(self, n: int, where: str) -> None:
        self.expanded += n
        if self.expanded > self.max_expanded:
            raise ScanRefused("unscannable", (
                f"{where.capitalize()} expands the upload past {self.max_expanded} uncompressed "
                "bytes (SCAN_MAX_EXPANSION times its size, at least SCAN_UNCOMPRESSED_FLOOR): "
                "too much to scan (a zip or compression bomb?)."))

    def zip(self, stream: IO[bytes], *, size: int, where: str,
            depth: int) -> tuple[str, str]:
        """Every member of a zip (PyTorch .pt/.pth, NumPy .npz, any zip), by the same rules."""
        self.nest(where, depth)
        stream.seek(0)
        try:
            archive = RelaxedZipFile(stream)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error) as exc:
            raise ScanRefused("malformed_archive",
                              f"{where.capitalize()} is a malformed zip archive: {exc}.") from None
        with archive:
            members = archive.infolist()
            self.members += len(members)
            if self.members > limit("SCAN_MAX_MEMBERS"):
                raise ScanRefused("unscannable", (
                    f"{where.capitalize()} brings the upload to {self.members} archive members; "
                    f"at most {limit('SCAN_MAX_MEMBERS')} are scanned (SCAN_MAX_MEMBERS)."))
            self.expand(sum(info.file_size for info in members), where)
            names = []
            for info in members:
                member_where = f"archive member {info.filename!r}" + (
                    f" of {where}" if depth else "")
                self.member(archive, stream, info, size=size, where=member_where, depth=depth)
                names.append(info.filename)
        if any(name.endswith("data.pkl") for name in names):
            file_format = "pytorch-zip"
        elif names and all(name.endswith(".npy") for name in names):
            file_format = "numpy-npz"
        else:
            file_format = "zip"
        return file_format, f"{where}: zip archive of {len(names)} member(s), each scanned"

    def member(self, archive, stream, info: zipfile.ZipInfo, *, size: int, where: str,
               depth: int) -> None:
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if path.name in ("__main__.py", "__main__.pyc") or "__main__" in path.parts:
            raise ScanRefused("executable", f"The {where} makes the zip a runnable Python "
                                            "application (python file.zip runs __main__).")
        if info.flag_bits & 0x1:
            raise ScanRefused("unscannable", f"The {where} is encrypted and cannot be scanned.")
        try:
            if info.compress_type == zipfile.ZIP_STORED:
                # Read in place: the bytes after the local header, as every zip reader does.
                stream.seek(info.header_offset)
                header = stream.read(30)
                if len(header) != 30 or not header.startswith(ZIP_MAGIC):
                    raise zipfile.BadZipFile("bad local file header")
                name_len, extra_len = struct.unpack("<HH", header[26:30])
                start = info.header_offset + 30 + name_len + extra_len
                if info.compress_size != info.file_size or start + info.file_size > size:
                    raise zipfile.BadZipFile("stored sizes do not match the archive")
                self.stream(_Window(stream, start, info.file_size), size=info.file_size,
                            where=where, depth=depth + 1, filename=info.filename)
                return
            with tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR) as spool, \
                    archive.open(info) as member:
                while chunk := member.read(CHUNK):
                    spool.write(chunk)
                self.stream(spool, size=spool.tell(), where=where, depth=depth + 1,
                            filename=info.filename)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError,
                zlib.error, lzma.LZMAError, struct.error) as exc:
            raise ScanRefused("malformed_archive", f"The {where} cannot be read: {exc}.") from None

    def decompress(self, stream: IO[bytes], compressed, *, where: str, depth: int) -> str:
        """Decompress a gzip/bzip2/xz/lzma file (every concatenated stream); scan the content."""
        matches, name, factory, error = compressed
        self.nest(where, depth)
        content_where = f"the {name} content of {where}"
        with tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR) as spool:
            stream.seek(0)
            decompressor, data, produced = factory(), b"", 0
            while True:
                if len(data) < COMPRESSED_HEADER:
                    data += stream.read(CHUNK)
                if decompressor.eof:
                    if matches(data):
                        decompressor = factory()
                    elif data.strip(b"\0"):
                        raise ScanRefused("malformed_archive", f"{where.capitalize()} has data "
                                                               f"after its {name} stream.")
                    elif not (data := stream.read(CHUNK)):
                        break
                    else:
                        continue
                elif not data and getattr(decompressor, "needs_input", True):
                    raise ScanRefused("malformed_archive",
                                      f"{where.capitalize()} is a truncated {name} stream.")
                try:
                    out = decompressor.decompress(data, max_length=CHUNK)
                except error as exc:
                    raise ScanRefused("malformed_archive", f"{where.capitalize()} is not a valid "
                                                           f"{name} stream: {exc}.") from None
                if decompressor.eof:
                    data = decompressor.unused_data
                elif hasattr(decompressor, "unconsumed_tail"):
                    data = decompressor.unconsumed_tail
                else:
                    data = b""
                produced += len(out)
                self.expand(len(out), where)
                spool.write(out)
            file_format, notes = self.stream(spool, size=produced, where=content_where,
                                             depth=depth + 1)
        return f"{where}: {name} stream of {produced} bytes holding {file_format}; " + \
            "; ".join(notes)


def _refuse_executable(head: bytes, where: str) -> None:
    for magic, description in EXECUTABLE_MAGIC:
        if head.startswith(magic):
            raise ScanRefused("executable",
                              f"{where.capitalize()} is {description}; executables are refused.")


def _refuse_unscannable(head: bytes, where: str) -> None:
    for magic, name in UNSCANNABLE_MAGIC:
        if head.startswith(magic):
            raise ScanRefused("unscannable", (
                f"{where.capitalize()} is a {name} archive, whose contents cannot be scanned; "
                "upload the file itself, a zip, or a gzip, bzip2 or xz stream."))
    if head[257:262] == b"ustar":
        raise ScanRefused("unscannable", f"{where.capitalize()} is a tar archive, whose contents "
                                         "cannot be scanned; upload the file itself or a zip.")


def _has_zip_end_record(stream: IO[bytes]) -> bool:
    """Whether zipfile would find an end-of-central-directory record (it reads the tail)."""
    stream.seek(0)
    try:
        return zipfile.is_zipfile(stream)
    finally:
        stream.seek(0)


def _check_npy(stream: IO[bytes], *, size: int, where: str) -> str:
    """A .npy array, read by NumPy's own header reader: no objects, data of the exact length."""
    stream.seek(0)
    max_header = limit("SCAN_NPY_MAX_HEADER")
    try:
        major_minor = npy_format.read_magic(stream)
        if major_minor == (1, 0):
            shape, _, dtype = npy_format.read_array_header_1_0(stream, max_header_size=max_header)
        elif major_minor == (2, 0):
            shape, _, dtype = npy_format.read_array_header_2_0(stream, max_header_size=max_header)
        elif major_minor == (3, 0):
            # Version 3.0 (UTF-8 field names) has no public reader of its own.
            shape, _, dtype = _read_array_header(stream, major_minor,
                                                 max_header_size=max_header)
        else:
            raise ValueError(f"unsupported format version {major_minor}")
    except Exception as exc:  # NumPy's reader decides; whatever it cannot read is refused.
        raise ScanRefused("malformed_numpy",
                          f"The .npy header of {where} is malformed: {exc}.") from None
    if dtype.hasobject:
        raise ScanRefused("unsafe_pickle", (
            f"The .npy array in {where} has dtype {dtype!r}, which holds Python objects: "
            "NumPy stores them as a pickle, and loading it could run code."))
    expected = math.prod(shape) * dtype.itemsize
    data_len = size - stream.tell()
    if data_len != expected:
        raise ScanRefused("malformed_numpy", (
            f"The .npy array in {where} ({dtype.str} {tuple(shape)}) needs {expected} data "
            f"bytes but {data_len} follow its header."))
    return f"{where}: numpy array {dtype.str} {tuple(shape)}, no objects, exact length"


def _claims_safetensors(head: bytes, *, size: int, filename: str) -> bool:
    """Named .safetensors, or laid out like one: a plausible length, then a JSON object."""
    if filename.lower().endswith(".safetensors"):
        return True
    if size < 10 or head[8:10] not in (b'{"', b"{}") or head[:4] == b"GGUF":
        return False
    # A header length under 4 GiB (its top four bytes zero) keeps random data out.
    return 2 <= struct.unpack("<Q", head[:8])[0] < 1 << 32


def _no_duplicates(pairs: list) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen = set()
        duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ValueError(f"duplicate key {duplicate!r}")
    return result


def _check_safetensors(file: IO[bytes], *, size: int, where: str) -> str:
    """Validate the header: 8-byte little-endian length, a JSON object of the documented shape
    within the file, and every tensor's dtype, shape and byte range tiling the data exactly."""

    def refuse(message):
        raise ScanRefused("malformed_safetensors",
                          f"Malformed safetensors header in {where}: {message}.")

    max_header = limit("SCAN_SAFETENSORS_MAX_HEADER")
    if size < 8:
        refuse("the file is shorter than the 8-byte header length")
    file.seek(0)
    (header_len,) = struct.unpack("<Q", file.read(8))
    if header_len > size - 8:
        refuse(f"the header length {header_len} exceeds the {size - 8} bytes that follow it")
    if header_len > max_header:
        refuse(f"the header length {header_len} exceeds {max_header} bytes "
               "(SCAN_SAFETENSORS_MAX_HEADER)")
    raw = file.read(header_len)
    if not raw.startswith(b"{"):
        refuse("the header does not start with a JSON object")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except RecursionError:
        refuse("the header JSON is nested too deeply")
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
        if not isinstance(info, dict) or info.keys() != SAFETENSORS_TENSOR_KEYS:
            refuse(f"tensor {name!r} needs exactly dtype, shape and data_offsets")
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
    return f"{where}: safetensors header valid, {len(spans)} tensor(s), {data_len} data bytes"
