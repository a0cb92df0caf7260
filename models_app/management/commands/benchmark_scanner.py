"""Scan benchmark: peak memory and time to scan artifacts of every kind at several sizes.

Builds each file on disk (never in memory), then scans it in a fresh child process and reads
that child's peak resident memory (``VmHWM`` in ``/proc/self/status``: the high-water mark of
the child's own address space, which, unlike ``ru_maxrss``, does not inherit the parent's size
at fork) before and after the scan, so one scan's memory cannot hide another's. The peak must
stay flat as files grow: pickles are walked through a 64 KiB buffer, stored zip members are
read in place, compressed data is spooled to temporary files.
"""

import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from numpy.lib import format as npy_format

MIB = 1024 * 1024
WRITE_CHUNK = 4 * MIB


def _write_random(out, n: int) -> None:
    while n > 0:
        take = min(n, WRITE_CHUNK)
        out.write(os.urandom(take))
        n -= take


def _write_repeated(out, unit: bytes, n: int) -> None:
    block = unit * (WRITE_CHUNK // len(unit))
    while n >= len(block):
        out.write(block)
        n -= len(block)
    out.write(unit * (n // len(unit)))


def pickle_bytes(out, size: int) -> None:
    """A protocol-4 pickle of one large bytes object (BINBYTES8)."""
    n = size - 12
    out.write(b"\x80\x04\x8e" + struct.pack("<Q", n))
    _write_random(out, n)
    out.write(b".")


def pickle_opcodes(out, size: int) -> None:
    """A protocol-2 pickle of lists of small ints: about one opcode per two bytes."""
    out.write(b"\x80\x02]")
    batch = b"(" + b"K\x01" * 1000 + b"e"
    _write_repeated(out, batch, size - 4)
    out.write(b".")


def torch_pickle(tensors: int) -> bytes:
    """data.pkl as torch.save writes it (protocol 2, persistent-id storages)."""
    parts = [b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01("]
    for i in range(tensors):
        key, storage = f"layer{i}.weight".encode(), str(i).encode()
        parts.append(
            b"X" + struct.pack("<I", len(key)) + key
            + b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storage"
            + b"ctorch\nFloatStorage\nX" + struct.pack("<I", len(storage)) + storage
            + b"X\x03\x00\x00\x00cpuK\x04tQK\x00K\x02K\x02\x86K\x02K\x01\x86\x89"
            + b"ccollections\nOrderedDict\n)RtR")
        if i % 1000 == 999:
            parts.append(b"u(")
    parts.append(b"u.")
    return b"".join(parts)


def torch_zip(out, size: int) -> None:
    """The layout torch.save writes: data.pkl and one raw member per storage, stored."""
    tensors = max(1, size // MIB)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", torch_pickle(tensors))
        archive.writestr("archive/version", "3\n")
        for i in range(tensors):
            with archive.open(f"archive/data/{i}", "w") as member:
                _write_random(member, size // tensors - 200)


def _npy_header(out, shape) -> None:
    npy_format.write_array_header_1_0(out, {"descr": "<f4", "fortran_order": False,
                                            "shape": shape})


def npy(out, size: int) -> None:
    count = (size - 128) // 4
    _npy_header(out, (count,))
    _write_random(out, count * 4)


def npz(out, size: int) -> None:
    """numpy.savez's layout: stored .npy members."""
    members = 8
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for i in range(members):
            with archive.open(f"a{i}.npy", "w") as member:
                count = (size // members - 256) // 4
                _npy_header(member, (count,))
                _write_random(member, count * 4)


def safetensors(out, size: int) -> None:
    tensors = max(1, size // MIB)
    each = (size - 64 * tensors - 64) // tensors // 4 * 4
    header = {f"t{i}": {"dtype": "F32", "shape": [each // 4],
                        "data_offsets": [i * each, (i + 1) * each]} for i in range(tensors)}
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    out.write(struct.pack("<Q", len(raw)) + raw)
    _write_random(out, each * tensors)


def gzip_pickle(out, size: int) -> None:
    """A gzip stream of a bytes pickle (random payload, so about its own size)."""
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1) as stream:
        pickle_bytes(stream, size)


def raw_binary(out, size: int) -> None:
    _write_random(out, size)


def opcode_bomb(out, size: int) -> None:
    """The attack: a small deflated zip holding ``size`` bytes of one-byte opcodes."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive, \
            archive.open("archive/data.pkl", "w") as member:
        member.write(b"\x80\x02")
        _write_repeated(member, b"N0", size - 4)
        member.write(b"N.")


KINDS: dict[str, Callable] = {
    "pickle-bytes": pickle_bytes, "pickle-opcodes": pickle_opcodes, "torch-zip": torch_zip,
    "npy": npy, "npz": npz, "safetensors": safetensors, "gzip-pickle": gzip_pickle,
    "raw-binary": raw_binary, "zip-bomb": opcode_bomb,
}

CHILD = """
import json, os, re, sys, time, tracemalloc, django
django.setup()
from models_app.scanning import ScanRefused, scan_artifact
def high_water_kib():
    with open("/proc/self/status") as status:
        return int(re.search(r"VmHWM:\\s+(\\d+) kB", status.read()).group(1))
path, trace = sys.argv[1], len(sys.argv) > 2
before = high_water_kib()
if trace:
    tracemalloc.start()
wall, cpu = time.perf_counter(), time.process_time()
try:
    with open(path, "rb") as file:
        outcome = "accepted: " + scan_artifact(file, size=os.path.getsize(path)).file_format
except ScanRefused as refusal:
    outcome = f"refused: {refusal.reason} ({refusal.message[:60]})"
print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                  "before_kib": before, "peak_kib": high_water_kib(), "outcome": outcome,
                  "traced_peak": tracemalloc.get_traced_memory()[1] if trace else None}))
"""


def scan_in_child(path: str, *, trace: bool = False) -> dict:
    """Scan ``path`` in a fresh Python process; its timings, memory and outcome."""
    child = subprocess.run(
        [sys.executable, "-c", CHILD, path, *(["trace"] if trace else [])],
        capture_output=True, cwd=settings.BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "registry_site.settings"})
    if child.returncode:
        raise CommandError(f"The scan of {path} failed: {child.stderr.decode()[-500:]}")
    return json.loads(child.stdout)


class Command(BaseCommand):
    help = ("Build artifacts of every kind at 4, 24 and 100 MiB and print, per scan, the peak "
            "resident memory of a fresh child process, its growth during the scan, and wall "
            "and CPU time.")

    def add_arguments(self, parser):
        parser.add_argument("--sizes", default="4,24,100", help="File sizes in MiB.")
        parser.add_argument("--kinds", default=",".join(KINDS), help="Kinds to build.")
        parser.add_argument("--tracemalloc", action="store_true",
                            help="Also print the tracemalloc peak (Python allocations during "
                                 "the scan; makes the scan about three times slower).")

    def handle(self, *args, **options):
        try:
            sizes = [int(s) for s in options["sizes"].split(",")]
        except ValueError:
            raise CommandError("--sizes must be MiB numbers separated by commas.") from None
        kinds = options["kinds"].split(",")
        self.trace = options["tracemalloc"]
        unknown = set(kinds) - KINDS.keys()
        if unknown:
            raise CommandError(f"Unknown kinds {sorted(unknown)}; choose from {list(KINDS)}.")
        self.stdout.write(f"{'kind':<15} {'MiB':>4} {'file':>10} {'peak':>9} "
                          f"{'+scan':>8} {'traced':>8} {'wall s':>7} {'cpu s':>6}  outcome")
        for kind in kinds:
            for size in sizes:
                self.one(kind, size * MIB)

    def one(self, kind: str, size: int) -> None:
        with tempfile.NamedTemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR,
                                         suffix=f".{kind}") as file:
            KINDS[kind](file, size)
            file.flush()
            result = scan_in_child(file.name, trace=self.trace)
            peak = result["peak_kib"] / 1024
            grown = (result["peak_kib"] - result["before_kib"]) / 1024
            traced = (f"{result['traced_peak'] / MIB:>6.2f}Mi" if self.trace else f"{'-':>8}")
            self.stdout.write(
                f"{kind:<15} {size // MIB:>4} {os.path.getsize(file.name) / MIB:>8.2f}Mi "
                f"{peak:>7.1f}Mi {grown:>6.1f}Mi {traced} {result['wall']:>7.2f} "
                f"{result['cpu']:>6.2f}  {result['outcome']}")
