"""A streaming walk over pickle opcodes that consumes bytes exactly as CPython's unpickler does.

Why our own walker: ``pickletools.genops`` parses the *values* of text arguments and gives up
on spellings the C unpickler (Modules/_pickle.c) accepts (``I0x10\\n``: ``_pickle`` reads
integers with base 0), so a scanner built on it saw "no imports" in pickles that ran code.
This walker never interprets a numeric argument: it only needs how many bytes each opcode
takes (a line, or a 1/2/4/8-byte length and that many bytes, skipped in chunks) and its effect
on the stack, so its position in the stream is always the unpickler's. It keeps nothing per
opcode: a bounded symbolic stack (an item is a short known string, an imported global, "not a
string", or "something"), the mark stack, and a memo that records which indices are set and
keeps only the values that can name an allowed global.

When is a byte sequence a pickle? ``pickle.load``, ``numpy.load(allow_pickle=True)`` and the
legacy ``torch.load`` all unpickle from the front of any file, so every file and every archive
member is walked from offset 0:

* an import (``GLOBAL``, ``STACK_GLOBAL``, ``INST``) outside the allow-list, a ``STACK_GLOBAL``
  whose operands are not strings the walk knows, or an ``EXT*`` opcode in data that opens with
  ``PROTO`` (or whose code is registered in ``copyreg``) refuses the file wherever it occurs;
* reaching ``STOP`` makes the bytes a pickle; what follows must be another complete pickle
  that passes too (legacy ``torch.save`` files, whose raw storages follow the pickles, are
  therefore refused: save with the zip format, the default since PyTorch 1.6);
* stopping where the unpickler itself raises (an opcode byte it does not know, the end of the
  data inside an argument or before ``STOP``, a negative length, popping an empty stack or a
  missing mark, an unsupported protocol, a non-UTF-8 ``GLOBAL`` line, an unregistered
  extension code) *before any import* means the bytes are opaque data (raw weights, GGUF,
  ONNX, a zip, an ``.npy``) and the other checks decide; so do plain values (no import, no
  opening ``PROTO``) that reach ``STOP`` followed by bytes the unpickler cannot read;
* stopping that way *after* an import, or in data that opens like a protocol 4-5 pickle
  (``PROTO`` then ``FRAME``), is a truncated or undecodable pickle: ``unscannable``.

Why this fails closed. The unpickler executes opcodes strictly in order, and code it did not
write can only come in through an import: ``find_class`` (``GLOBAL``, ``STACK_GLOBAL``,
``INST``) or the extension registry (``EXT*``). The walker sees the same opcode sequence as the
unpickler, because both take exactly the same argument bytes, and it checks every import
before going on. Calls (``REDUCE``, ``NEWOBJ``, ``OBJ``, ``BUILD``) are not gates: a value on
the stack is plain data (none of it callable: the unpickler raises ``TypeError``), an allowed
global, or what an allowed global returned, and with this allow-list none of those returns a
callable other than an allowed global (numpy's ``scalar`` can hand one back). Persistent ids go
to the loader's own ``persistent_load`` (``pickle.load`` has none and raises; torch's accepts
only tuples), with arguments built under the same checks. The walker declares "the unpickler
stops here" only at errors the C unpickler raises for every input (the list above); where it
is unsure (a malformed number, a bad string escape, a memo index never stored, a call that
would fail), it assumes the unpickler goes on and keeps walking, which can only refuse more.
So when it calls data opaque the unpickler imported nothing before raising, and when it accepts
a pickle every import the unpickler could perform was on the allow-list. Where the pure-Python
unpickler differs (it reads a last line without a newline), the data ending inside an import
name is refused. ``tests/security/test_scanner_pickle_walk.py`` checks these claims on fuzzed
pickles against the real C unpickler, and that raw weights are not refused for looking like a
pickle (an opcode at the front of random data is common; an allowed import is not). Every loop
is bounded: opcodes, stack, marks and memo have limits (``unscannable`` when reached).
"""

import _compat_pickle
import codecs
import contextlib
import copyreg
from dataclasses import dataclass, field
from typing import IO

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
# Strings that can be half of an allowed STACK_GLOBAL: only these are worth keeping in the memo.
_ALLOWED_WORDS = {word: word for module, names in SAFE_GLOBALS.items()
                  for word in (module, *names)}
# Longer strings are kept only as "a string" (no allowed name is this long); with the stack
# limit this bounds the walk's memory (100,000 items of at most 128 bytes: under 20 MiB).
MAX_KNOWN_STRING = 128
READ_CHUNK = 65536


class ScanRefused(Exception):
    """The file is refused; ``reason`` is a stable word, ``message`` says why in English."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


class _LoaderError(Exception):
    """The unpickler itself raises here, whatever it is loading into."""


@dataclass(frozen=True)
class Global:
    name: str


@dataclass(frozen=True)
class LongString:
    length: int


# A value the walk cannot name (it may be a string); and one that is certainly not a string.
SOMETHING = object()
NOT_STR = object()


@dataclass
class PickleLimits:
    max_opcodes: int
    max_stack: int
    max_memo: int


@dataclass
class WalkState:
    """Budget and findings shared by every pickle walked for one upload."""

    limits: PickleLimits
    opcodes: int = 0
    imports: set = field(default_factory=set)


class _Reader:
    """Buffered reads from a stream of ``size`` bytes, counting the position."""

    def __init__(self, stream: IO[bytes], *, start: int, size: int):
        self.stream = stream
        self.size = size
        self.buffer = b""
        self.offset = 0
        self.base = start  # the stream position of buffer[0]

    @property
    def position(self) -> int:
        return self.base + self.offset

    def _fill(self) -> bool:
        chunk = self.stream.read(READ_CHUNK)
        if not chunk:
            return False
        self.base += self.offset
        self.buffer = self.buffer[self.offset:] + chunk
        self.offset = 0
        return True

    def peek(self, n: int) -> bytes:
        while len(self.buffer) - self.offset < n and self._fill():
            pass
        return self.buffer[self.offset:self.offset + n]

    def byte(self) -> int | None:
        """The next byte, or None at the end of the data."""
        if self.offset >= len(self.buffer) and not self._fill():
            return None
        value = self.buffer[self.offset]
        self.offset += 1
        return value

    def exact(self, n: int) -> bytes:
        """``n`` (small) bytes; the end of the data first is the unpickler's error too."""
        while len(self.buffer) - self.offset < n:
            if not self._fill():
                raise _LoaderError("the data ends inside an opcode argument")
        data = self.buffer[self.offset:self.offset + n]
        self.offset += n
        return data

    def skip(self, n: int, keep: int = 0) -> bytes:
        """Skip ``n`` bytes in chunks (never holding them), returning the first ``keep``."""
        kept = b""
        while n:
            if self.offset >= len(self.buffer) and not self._fill():
                raise _LoaderError("the data ends inside an opcode argument")
            take = min(n, len(self.buffer) - self.offset)
            if len(kept) < keep:
                kept += self.buffer[self.offset:self.offset + min(take, keep - len(kept))]
            self.offset += take
            n -= take
        return kept

    def line(self, *, keep: int = MAX_KNOWN_STRING, decoder=None) -> tuple[bytes, int]:
        """A ``\\n``-terminated line: its first ``keep`` bytes (newline excluded) and length.

        ``decoder`` (an incremental decoder) sees the whole line, chunk by chunk.
        """
        kept = b""
        length = 0
        while True:
            if self.offset >= len(self.buffer) and not self._fill():
                # The C unpickler's readline needs the newline ("pickle data was truncated").
                raise _LoaderError("the data ends inside a text argument")
            end = self.buffer.find(b"\n", self.offset)
            stop = len(self.buffer) if end < 0 else end
            piece = self.buffer[self.offset:stop]
            if decoder is not None:
                decoder.decode(piece, final=end >= 0)
            if len(kept) < keep:
                kept += piece[:keep - len(kept)]
            length += len(piece)
            consumed = stop - self.offset + (end >= 0)
            self.offset += consumed
            if end >= 0:
                return kept, length


def _utf8_line(reader: _Reader) -> tuple[str | None, int]:
    """A GLOBAL/INST line as the unpickler decodes it (strict UTF-8, else it raises)."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        kept, length = reader.line(decoder=decoder)
    except UnicodeDecodeError:
        raise _LoaderError("a GLOBAL or INST line is not UTF-8") from None
    except _LoaderError:
        # The pure-Python unpickler would still import the partial name: do not call it data.
        raise ScanRefused("unscannable", "The data ends inside the name of a GLOBAL or INST "
                                           "import; it cannot be scanned.") from None
    if length == 0:
        raise _LoaderError("a GLOBAL or INST line is empty")
    if length > MAX_KNOWN_STRING:
        return None, length
    return kept.decode("utf-8"), length


class _NumberLine:
    """Sees a GET/PUT line chunk by chunk: ``bad`` once a byte before the first NUL cannot be
    part of an integer (the C string ends at NUL; PyLong_FromString then refuses the line)."""

    ALLOWED = frozenset(b" \t\n\r\f\v0123456789+-_")

    def __init__(self):
        self.bad = False
        self.ended = False
        self.text = b""  # the part before the NUL, up to MAX_KNOWN_STRING + 1 bytes
        self.length = 0

    def decode(self, piece: bytes, final: bool = False) -> None:
        if self.ended or self.bad:
            return
        head, nul, _ = piece.partition(b"\0")
        self.bad = not self.ALLOWED.issuperset(head)
        self.ended = bool(nul)
        self.text += head[:MAX_KNOWN_STRING + 1 - len(self.text)]
        self.length += len(head)


# Opcodes whose argument is a fixed number of bytes and which push one plain item.
_FIXED_PUSH = {
    ord("J"): 4, ord("K"): 1, ord("M"): 2, ord("G"): 8,  # BININT, BININT1, BININT2, BINFLOAT
}
# Opcodes without argument that push one plain item.
_PLAIN_PUSH = {ord(c) for c in "N}])"} | {0x88, 0x89, 0x8F}  # NONE, EMPTY_*, NEWTRUE/FALSE, set
# Length-prefixed data: opcode -> (length bytes, signed, pushes a str when decodable).
_COUNTED = {
    ord("T"): (4, True, False),   # BINSTRING
    ord("U"): (1, False, False),  # SHORT_BINSTRING
    ord("X"): (4, False, True),   # BINUNICODE
    0x8C: (1, False, True),       # SHORT_BINUNICODE
    0x8D: (8, False, True),       # BINUNICODE8
    ord("B"): (4, False, False),  # BINBYTES
    ord("C"): (1, False, False),  # SHORT_BINBYTES
    0x8E: (8, False, False),      # BINBYTES8
    0x96: (8, False, False),      # BYTEARRAY8
    0x8A: (1, False, False),      # LONG1
    0x8B: (4, True, False),       # LONG4
}
# Text-line arguments that push one plain item: INT, LONG, FLOAT, STRING.
_LINE_PUSH = {ord(c) for c in "ILFS"}
PROTO = 0x80
STOP = ord(".")
HIGHEST_PROTOCOL = 5


class _Memo:
    """The unpickler's memo as far as the scan needs it.

    Which indices are set is tracked exactly (a bitmap for small indices, a set for the rest,
    at most ``limit`` entries), because ``MEMOIZE`` stores at "the number of entries"; values
    are kept only for strings that can name an allowed global and for globals, the only things
    ever looked up. Anything else, and a missing index, reads back as "something".
    """

    BITMAP_INDICES = 1 << 24  # a 2 MiB bitmap at most
    # Python's pickler numbers the memo densely from 0: large indices are rare.
    MAX_LARGE_INDICES = 65_536

    def __init__(self, limit: int):
        self.limit = limit
        self.bits = bytearray()
        self.large: set[int] = set()
        self.count = 0
        self.values: dict = {}

    def _mark(self, index: int) -> bool:
        """Record ``index`` as set; False when it was set already."""
        if index < self.BITMAP_INDICES:
            byte, bit = divmod(index, 8)
            if byte >= len(self.bits):
                self.bits.extend(bytes(max(byte + 1 - len(self.bits), len(self.bits))))
            if self.bits[byte] >> bit & 1:
                return False
            self.bits[byte] |= 1 << bit
        else:
            if index in self.large:
                return False
            self.large.add(index)
        return True

    def full(self) -> bool:
        return self.count > self.limit or len(self.large) > self.MAX_LARGE_INDICES

    def put(self, index: int, item) -> bool:
        """Store ``item`` at ``index``; False when the memo limit is reached."""
        if self._mark(index):
            self.count += 1
            if self.full():
                return False
        if isinstance(item, Global) or (isinstance(item, str) and item in _ALLOWED_WORDS):
            self.values[index] = item
        else:
            self.values.pop(index, None)
        return True

    def get(self, index: int):
        return self.values.get(index, SOMETHING)

    def memoize(self, item) -> bool:
        return self.put(self.count, item)


class _EitherMemo:
    """The memo of a pickle that follows another: empty for a loader that calls pickle.load
    again, the previous one continued for a loader that reuses its Unpickler (MEMOIZE then
    numbers on from it). Both are updated; a lookup is known only where both agree."""

    def __init__(self, fresh: _Memo, continued: _Memo):
        self.fresh, self.continued = fresh, continued

    def put(self, index: int, item) -> bool:
        return self.fresh.put(index, item) & self.continued.put(index, item)

    def memoize(self, item) -> bool:
        return self.fresh.memoize(item) & self.continued.memoize(item)

    def get(self, index: int):
        value = self.fresh.get(index)
        return value if value == self.continued.get(index) else SOMETHING


class _Walk:
    """One pickle, opcode by opcode, from the reader's position to STOP."""

    def __init__(self, reader: _Reader, state: WalkState, memo, where: str):
        self.reader = reader
        self.state = state
        self.memo = memo
        self.where = where
        self.max_stack = state.limits.max_stack
        self.table = self.handlers()
        self.reset()

    def reset(self) -> None:
        """Start the next pickle (the unpickler's load() resets all but the memo)."""
        self.stack, self.marks = [], []
        self.code_seen = False
        self.proto = 0
        head = self.reader.peek(2)
        # Data that opens with PROTO is meant as a pickle (EXT exists from protocol 2 on).
        self.opens_with_proto = (len(head) == 2 and head[0] == PROTO
                                 and head[1] <= HIGHEST_PROTOCOL)

    # The C unpickler's stack discipline: items below the newest mark cannot be popped.
    def need(self, n: int) -> None:
        if len(self.stack) - n < (self.marks[-1] if self.marks else 0):
            raise _LoaderError("unpickling stack underflow")

    def pop(self, n: int = 1) -> list:
        self.need(n)
        items = self.stack[len(self.stack) - n:]
        del self.stack[len(self.stack) - n:]
        return items

    def pop_mark(self) -> list:
        if not self.marks:
            raise _LoaderError("could not find MARK")
        mark = self.marks.pop()
        items = self.stack[mark:]
        del self.stack[mark:]
        return items

    def push(self, item) -> None:
        if len(self.stack) + len(self.marks) >= self.max_stack:
            self.refuse_limit(f"{self.max_stack} stack items (SCAN_PICKLE_MAX_STACK)")
        self.stack.append(item)

    def refuse_limit(self, what: str):
        raise ScanRefused("unscannable", f"The pickle in {self.where} exceeds the scan limit "
                                           f"of {what}; it cannot be scanned.")

    def refuse(self, message: str):
        raise ScanRefused("unsafe_pickle", f"The pickle in {self.where} {message}; loading it "
                                             "could run code.")

    def check_import(self, module: str | None, name: str | None) -> Global:
        if module is None or name is None:
            self.refuse("imports a global with a very long name, outside the safe list")
        if self.proto < 3:
            # What find_class does for protocols 0-2 (fix_imports): Python 2 names map to 3.
            module, name = _compat_pickle.NAME_MAPPING.get(
                (module, name), (_compat_pickle.IMPORT_MAPPING.get(module, module), name))
        dotted = f"{module}.{name}"
        if name not in SAFE_GLOBALS.get(module, ()):
            self.refuse(f"imports {dotted}, outside the safe list (tensors, arrays and plain "
                        "containers)")
        self.state.imports.add(dotted)
        self.code_seen = True
        return Global(dotted)

    def memo_put(self, index: int) -> None:
        self.need(1)
        if not self.memo.put(index, self.stack[-1]):
            self.memo_limit()

    def memo_limit(self):
        self.refuse_limit(f"{self.state.limits.max_memo} memo entries "
                              f"(SCAN_PICKLE_MAX_MEMO), {_Memo.MAX_LARGE_INDICES} of them "
                              "numbered from 2**24 up")

    def text_index(self) -> int:
        """GET/PUT's decimal line, parsed as _pickle does (PyLong_FromString, base 10)."""
        checker = _NumberLine()
        self.reader.line(keep=0, decoder=checker)
        if checker.bad:
            raise _LoaderError("a memo index is not a number")
        if checker.length > MAX_KNOWN_STRING:
            raise ScanRefused("unscannable", f"The pickle in {self.where} has a memo index "
                                               f"of {checker.length} characters.")
        try:
            # The C string ends at a NUL byte; int() accepts the same spellings otherwise.
            index = int(checker.text)
        except ValueError:
            raise _LoaderError("a memo index is not a number") from None
        if index < 0:
            raise _LoaderError("a negative memo index")
        return index

    def run(self) -> None:
        """Walk to STOP; raises _LoaderError where the unpickler would stop with an error."""
        reader, stack, state = self.reader, self.stack, self.state
        handlers = self.table
        budget = state.limits.max_opcodes - state.opcodes
        walked = 0
        try:
            while True:
                # The next opcode byte, inline: this loop runs millions of times.
                if reader.offset < len(reader.buffer):
                    op = reader.buffer[reader.offset]
                    reader.offset += 1
                else:
                    op = reader.byte()
                    if op is None:
                        raise _LoaderError("the data ends before STOP")
                walked += 1
                if walked > budget:
                    self.refuse_limit(f"{state.limits.max_opcodes} opcodes "
                                      "(SCAN_PICKLE_MAX_OPCODES)")
                if op in _PLAIN_PUSH:
                    if len(stack) + len(self.marks) >= self.max_stack:
                        self.push(NOT_STR)
                    stack.append(NOT_STR)
                    continue
                if op == STOP:
                    self.pop()
                    return
                handler = handlers.get(op)
                if handler is None:
                    raise _LoaderError(f"invalid load key {op:#04x}")
                handler(op)
        finally:
            state.opcodes += walked

    def handlers(self) -> dict:
        """Opcode byte -> handler, for every opcode of protocols 0-5 but STOP and plain pushes."""
        table = {}
        for op in _FIXED_PUSH:
            table[op] = self.fixed
        for op in _COUNTED:
            table[op] = self.counted
        for op in _LINE_PUSH:
            table[op] = self.line_push
        named = {
            "(": self.mark, "0": self.pop_item, "1": self.pop_mark_op, "2": self.dup,
            "V": self.unicode, "a": self.append, "e": self.mark_items, "u": self.mark_items,
            "s": self.setitem, "d": self.collect, "l": self.collect, "t": self.collect,
            "g": self.get, "h": self.get, "j": self.get, "p": self.put, "q": self.put,
            "r": self.put, "c": self.global_, "i": self.inst, "o": self.obj,
            "R": self.call2, "b": self.build, "P": self.persid, "Q": self.binpersid,
        }
        table.update({ord(c): handler for c, handler in named.items()})
        table.update({
            0x90: self.mark_items, 0x91: self.collect,  # ADDITEMS, FROZENSET
            0x85: self.tuple_n, 0x86: self.tuple_n, 0x87: self.tuple_n,  # TUPLE1..3
            0x94: self.memoize, PROTO: self.proto_op, 0x95: self.frame,
            0x97: self.next_buffer, 0x98: self.readonly_buffer,
            0x93: self.stack_global, 0x81: self.call2, 0x92: self.newobj_ex,
            0x82: self.ext, 0x83: self.ext, 0x84: self.ext,
        })
        return table

    def fixed(self, op: int) -> None:  # BININT, BININT1, BININT2, BINFLOAT
        self.reader.exact(_FIXED_PUSH[op])
        self.push(NOT_STR)

    def line_push(self, op: int) -> None:  # INT, LONG, FLOAT, STRING: the value is not needed
        self.reader.line(keep=0)
        # STRING decodes to str with the loader's encoding: it may name a module.
        self.push(SOMETHING if op == ord("S") else NOT_STR)

    def counted(self, op: int) -> None:
        width, signed, text = _COUNTED[op]
        raw = self.reader.exact(width)
        length = int.from_bytes(raw, "little", signed=signed)
        if length < 0 or length > (1 << 63) - 1:
            raise _LoaderError("a negative or oversized length")
        data = self.reader.skip(length, keep=MAX_KNOWN_STRING + 1 if text else 0)
        if not text:
            # BINSTRING and SHORT_BINSTRING decode to str with the loader's encoding.
            self.push(SOMETHING if op in (ord("T"), ord("U")) else NOT_STR)
        elif length > MAX_KNOWN_STRING:
            self.push(LongString(length))
        else:
            try:
                self.push(data.decode("utf-8", "surrogatepass"))
            except UnicodeDecodeError:
                self.push(SOMETHING)

    def mark(self, op: int) -> None:
        if len(self.stack) + len(self.marks) >= self.max_stack:
            self.refuse_limit(f"{self.max_stack} stack items (SCAN_PICKLE_MAX_STACK)")
        self.marks.append(len(self.stack))

    def pop_item(self, op: int) -> None:  # POP: pops the mark when the mark is on top
        if self.marks and self.marks[-1] == len(self.stack):
            self.marks.pop()
        else:
            self.pop()

    def pop_mark_op(self, op: int) -> None:  # POP_MARK
        self.pop_mark()

    def dup(self, op: int) -> None:
        self.need(1)
        self.push(self.stack[-1])

    def unicode(self, op: int) -> None:  # UNICODE: a raw-unicode-escape line
        kept, length = self.reader.line()
        value = SOMETHING
        if length <= MAX_KNOWN_STRING:
            with contextlib.suppress(UnicodeDecodeError):
                value = kept.decode("raw_unicode_escape")
        self.push(value)

    def append(self, op: int) -> None:
        self.need(2)
        self.pop()

    def mark_items(self, op: int) -> None:  # APPENDS, SETITEMS, ADDITEMS
        if not self.marks:
            raise _LoaderError("could not find MARK")
        mark = self.marks[-1]
        previous = self.marks[-2] if len(self.marks) > 1 else 0
        if mark <= previous:  # the container must sit between the two marks
            raise _LoaderError("unpickling stack underflow")
        if op == ord("u") and (len(self.stack) - mark) % 2:
            raise _LoaderError("odd number of items for SETITEMS")
        self.pop_mark()

    def setitem(self, op: int) -> None:
        self.need(3)
        self.pop(2)

    def collect(self, op: int) -> None:  # DICT, LIST, TUPLE, FROZENSET
        self.pop_mark()
        self.push(NOT_STR)

    def tuple_n(self, op: int) -> None:  # TUPLE1..3
        self.pop(op - 0x84)
        self.push(NOT_STR)

    def get(self, op: int) -> None:  # GET, BINGET, LONG_BINGET
        if op == ord("g"):
            index = self.text_index()
        else:
            index = int.from_bytes(self.reader.exact(1 if op == ord("h") else 4), "little")
        self.push(self.memo.get(index))

    def put(self, op: int) -> None:  # PUT, BINPUT, LONG_BINPUT
        if op == ord("p"):
            index = self.text_index()
        else:
            index = int.from_bytes(self.reader.exact(1 if op == ord("q") else 4), "little")
        self.memo_put(index)

    def memoize(self, op: int) -> None:
        self.need(1)
        if not self.memo.memoize(self.stack[-1]):
            self.memo_limit()

    def proto_op(self, op: int) -> None:
        protocol = self.reader.exact(1)[0]
        if protocol > HIGHEST_PROTOCOL:
            raise _LoaderError("unsupported pickle protocol")
        self.proto = protocol

    def frame(self, op: int) -> None:  # FRAME: the unpickler reads the whole frame first
        length = int.from_bytes(self.reader.exact(8), "little")
        if length > self.reader.size - self.reader.position:
            raise _LoaderError("a FRAME longer than the data")

    def next_buffer(self, op: int) -> None:
        self.push(NOT_STR)

    def readonly_buffer(self, op: int) -> None:
        self.need(1)

    def global_(self, op: int) -> None:  # GLOBAL
        module, _ = _utf8_line(self.reader)
        name, _ = _utf8_line(self.reader)
        self.push(self.check_import(module, name))

    def inst(self, op: int) -> None:  # INST: the class, then a call with the items above the mark
        module, _ = _utf8_line(self.reader)
        name, _ = _utf8_line(self.reader)
        self.check_import(module, name)
        self.pop_mark()
        self.push(SOMETHING)

    def stack_global(self, op: int) -> None:
        module, name = self.pop(2)
        if module is NOT_STR or name is NOT_STR:
            raise _LoaderError("STACK_GLOBAL requires str")
        if not isinstance(module, str) or not isinstance(name, str):
            self.refuse(f"imports a global named by {_describe(module)} and {_describe(name)}, "
                        "which the scanner cannot resolve to known strings")
        self.push(self.check_import(module, name))

    def obj(self, op: int) -> None:  # OBJ: class and arguments above the mark
        if not self.marks:
            raise _LoaderError("could not find MARK")
        if len(self.stack) - self.marks[-1] < 1:
            raise _LoaderError("unpickling stack underflow")
        self.pop_mark()
        self.push(SOMETHING)

    # Calls are not refused by what they call: every value on the stack is plain data (not
    # callable: the unpickler raises TypeError) or came from an allowed global, and with this
    # allow-list the only callables any of them can yield are allowed globals (numpy's scalar
    # hands back the object it was given). The imports are the gate.
    def call2(self, op: int) -> None:  # REDUCE, NEWOBJ: callable and arguments
        self.pop(2)
        self.push(SOMETHING)

    def newobj_ex(self, op: int) -> None:
        self.pop(3)
        self.push(SOMETHING)

    def build(self, op: int) -> None:
        self.need(2)
        self.pop()

    def persid(self, op: int) -> None:  # PERSID: an ASCII line for the loader's persistent_load
        decoder = codecs.getincrementaldecoder("ascii")("strict")
        try:
            self.reader.line(keep=0, decoder=decoder)
        except UnicodeDecodeError:
            raise _LoaderError("a PERSID line is not ASCII") from None
        self.push(SOMETHING)

    def binpersid(self, op: int) -> None:
        self.pop()
        self.push(SOMETHING)

    def ext(self, op: int) -> None:  # EXT1, EXT2, EXT4
        code = int.from_bytes(self.reader.exact({0x82: 1, 0x83: 2, 0x84: 4}[op]), "little")
        if self.opens_with_proto or code in copyreg._inverted_registry:
            self.refuse("uses the copyreg extension registry (EXT opcodes), whose targets "
                        "cannot be checked")
        # Elsewhere (the front of raw data starts with 0x82-0x84 about once in 85 blocks):
        # neither pickle, numpy nor torch registers extension codes, so the unpickler raises
        # "unregistered extension code", as it does for an unknown opcode byte.
        raise _LoaderError("unregistered extension code")


def _describe(item) -> str:
    if isinstance(item, str):
        return repr(item)
    if isinstance(item, LongString):
        return f"a {item.length}-byte string"
    if isinstance(item, Global):
        return item.name
    return "a value that is not a string"


@dataclass(frozen=True)
class WalkResult:
    is_pickle: bool
    count: int = 0
    first_stop: int = 0  # the offset just after the first pickle's STOP
    note: str = ""


def walk_pickles(stream: IO[bytes], *, size: int, state: WalkState, where: str) -> WalkResult:
    """Walk ``stream`` (``size`` bytes) from offset 0 as the unpickler would read it."""
    stream.seek(0)
    reader = _Reader(stream, start=0, size=size)
    # Protocols 4 and 5 always open with PROTO then FRAME: data that does is a pickle.
    head = reader.peek(3)
    framed = len(head) == 3 and head[0] == PROTO and head[1] in (4, 5) and head[2] == 0x95
    # Data that opens with PROTO and reaches STOP is a pickle (pickle.dumps writes PROTO for
    # protocols 2-5): what follows its STOP must be another pickle, even with no import.
    opened = len(head) >= 2 and head[0] == PROTO and head[1] <= 5
    memo = _Memo(state.limits.max_memo)
    walk = _Walk(reader, state, memo, where)
    try:
        walk.run()
    except _LoaderError as error:
        if walk.code_seen or framed:
            raise ScanRefused("unscannable", (
                f"The pickle in {where} is truncated or cannot be decoded at offset "
                f"{reader.position} ({error}).")) from None
        return WalkResult(is_pickle=False, note=str(error))
    count, first_stop = 1, reader.position
    imported = walk.code_seen or framed or opened
    while reader.position < size:
        # The next pickle must pass whether the loader starts a fresh memo or keeps this one.
        start = reader.position
        walk.memo = _EitherMemo(_Memo(state.limits.max_memo), memo)
        walk.reset()
        # A pickle boundary costs a few opcodes' worth of work: count it so.
        state.opcodes += 4
        try:
            walk.run()
        except _LoaderError as error:
            if not (imported or walk.code_seen):
                # Plain values (no import anywhere), then bytes the unpickler cannot read:
                # no code can run from any of it, so it is data like any other.
                return WalkResult(is_pickle=False, note=f"plain values then {error}")
            raise ScanRefused("unscannable", (
                f"{where.capitalize()} holds {size - start} bytes after the end (STOP) of "
                f"its pickle at offset {start}, which are not a complete pickle ({error}); "
                "a pickle must be followed by nothing or by another pickle.")) from None
        imported = imported or walk.code_seen
        count += 1
    return WalkResult(is_pickle=True, count=count, first_stop=first_stop)
