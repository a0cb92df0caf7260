"""Every attack class that got past the old scanner, built as a real file: first proof that the
payload runs when the real loader opens the file, then proof that the scanner refuses it."""

import bz2
import gzip
import io
import lzma
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.security import factories as f
from tests.security.factories import refused, scan

LOADERS = {
    "pickle": "import pickle, sys; pickle.load(open(sys.argv[1], 'rb'))",
    "numpy": "import numpy, sys; a = numpy.load(sys.argv[1], allow_pickle=True); "
             "[a[k] for k in a.files] if hasattr(a, 'files') else None",
    "zip-member": "import pickle, sys, zipfile; "
                  "pickle.loads(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))",
    "nested-zip": "import io, pickle, sys, zipfile; inner = zipfile.ZipFile(sys.argv[1])"
                  ".read(sys.argv[2]); pickle.loads(zipfile.ZipFile(io.BytesIO(inner))"
                  ".read('data.pkl'))",
    "pickle-twice": "import pickle, sys; f = open(sys.argv[1], 'rb'); pickle.load(f); "
                    "pickle.load(f)",
    "gzip": "import gzip, pickle, sys; pickle.load(gzip.open(sys.argv[1]))",
    "bz2": "import bz2, pickle, sys; pickle.load(bz2.open(sys.argv[1]))",
    "xz": "import lzma, pickle, sys; pickle.load(lzma.open(sys.argv[1]))",
    "python": None,
}


def runs_payload(tmp_path, data: bytes, loader: str, *args: str) -> bool:
    """Load ``data`` with the real loader in a child process; True if the marker appeared."""
    path = tmp_path / "artifact"
    path.write_bytes(data)
    code = LOADERS[loader]
    command = [sys.executable, str(path)] if code is None else [sys.executable, "-c", code,
                                                                str(path), *args]
    subprocess.run(command, capture_output=True, timeout=60, cwd=tmp_path)
    return (tmp_path / "marker").exists()


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "marker"


@pytest.mark.parametrize("trick", list(f.PICKLETOOLS_BLIND_SPOTS.values()),
                         ids=list(f.PICKLETOOLS_BLIND_SPOTS))
def test_integer_pickletools_cannot_parse_before_global_and_reduce(tmp_path, marker, trick):
    data = f.marker_pickle(marker, before=trick)
    assert runs_payload(tmp_path, data, "pickle")
    refusal = refused(data)
    assert refusal.reason == "unsafe_pickle"
    assert "builtins.exec" in refusal.message


@pytest.mark.parametrize("trick", list(f.PICKLETOOLS_BLIND_SPOTS.values()),
                         ids=list(f.PICKLETOOLS_BLIND_SPOTS))
def test_the_same_trick_inside_a_torch_zip(tmp_path, marker, trick):
    data = f.torch_zip(f.marker_pickle(marker, before=trick))
    assert runs_payload(tmp_path, data, "zip-member", "archive/data.pkl")
    refusal = refused(data, "model.pt")
    assert refusal.reason == "unsafe_pickle"
    assert "archive/data.pkl" in refusal.message


@pytest.mark.parametrize("trick", list(f.PICKLETOOLS_BLIND_SPOTS.values()),
                         ids=list(f.PICKLETOOLS_BLIND_SPOTS))
def test_the_same_trick_inside_an_npy_object_array(tmp_path, marker, trick):
    data = f.npy_object(f.marker_pickle(marker, before=trick))
    assert runs_payload(tmp_path, data, "numpy")
    assert refused(data).reason == "unsafe_pickle"


def test_stack_global_resolved_through_the_memo_is_refused(tmp_path, marker):
    data = f.stack_global_pickle(marker)
    assert runs_payload(tmp_path, data, "pickle")
    refusal = refused(data)
    assert refusal.reason == "unsafe_pickle"
    assert "builtins.exec" in refusal.message


def test_second_pickle_reading_the_memo_as_a_fresh_loader_does_is_refused(tmp_path, marker):
    # memo[0] is "collections" in the first pickle; a loader that calls pickle.load again
    # starts a fresh memo, where MEMOIZE puts "builtins" at 0 and BINGET 0 reads it back.
    first = b"\x80\x04\x8c\x0bcollections\x94."
    second = (b"\x80\x04\x8c\x08builtins\x94h\x00\x8c\x04exec\x93"
              + f.binunicode(f"open({str(marker)!r}, 'w').close()") + b"\x85R.")
    data = first + second
    assert runs_payload(tmp_path, data, "pickle-twice")
    refusal = refused(data)
    assert refusal.reason == "unsafe_pickle"
    assert "cannot resolve" in refusal.message


OBJECT_DESCRS = {"object": "'object'", "structured": "[('a', 'object')]", "O8": "'|O8'",
                 "nested": "[('a', [('b', '<f4'), ('c', 'O')])]"}


@pytest.mark.parametrize("descr", list(OBJECT_DESCRS.values()), ids=list(OBJECT_DESCRS))
def test_npy_object_dtype_in_any_spelling_is_refused(tmp_path, marker, descr):
    data = f.npy_object(f.marker_pickle(marker), descr=descr)
    assert runs_payload(tmp_path, data, "numpy")
    refusal = refused(data)
    assert refusal.reason == "unsafe_pickle"
    assert "Python objects" in refusal.message


@pytest.mark.parametrize("descr", ["'object'", "[('a', 'object')]"], ids=["object", "structured"])
def test_npz_member_with_object_dtype_is_refused(tmp_path, marker, descr):
    data = f.npz({"weights.npy": f.npy_object(f.marker_pickle(marker), descr=descr)})
    assert runs_payload(tmp_path, data, "numpy")
    refusal = refused(data)
    assert refusal.reason == "unsafe_pickle"
    assert "weights.npy" in refusal.message


def test_pickle_followed_by_a_benign_zip_is_refused(tmp_path, marker):
    data = f.marker_pickle(marker) + f.npz({"a.npy": f.npy(b"\x00" * 4, descr="<f4")})
    assert runs_payload(tmp_path, data, "pickle")
    assert refused(data).reason == "unsafe_pickle"


def test_safe_pickle_followed_by_a_zip_is_refused_as_trailing_data():
    data = f.benign_pickle() + f.npz({"a.npy": f.npy(b"\x00" * 4, descr="<f4")})
    refusal = refused(data)
    assert refusal.reason == "unscannable"
    assert "after the end (STOP)" in refusal.message


def test_npy_followed_by_a_benign_zip_is_refused(tmp_path, marker):
    evil = f.npy_object(f.marker_pickle(marker), descr="'object'")
    data = evil + f.npz({"a.npy": f.npy(b"\x00" * 4, descr="<f4")})
    assert runs_payload(tmp_path, data, "numpy")
    assert refused(data).reason == "unsafe_pickle"
    numeric = f.npy(b"\x00" * 4, descr="<f4") + f.npz({"a.npy": f.npy(b"\x00" * 4, descr="<f4")})
    refusal = refused(numeric)
    assert refusal.reason == "malformed_numpy"
    assert "needs 4 data bytes" in refusal.message


def test_zip_holding_a_junk_prefixed_zip_with_an_unsafe_pickle_is_refused(tmp_path, marker):
    inner = b"JUNK" * 16 + f.zip_of({"data.pkl": f.marker_pickle(marker)})
    data = f.zip_of({"inner.bin": inner})
    assert runs_payload(tmp_path, data, "nested-zip", "inner.bin")
    refusal = refused(data)
    assert refusal.reason == "unsafe_pickle"
    assert "'data.pkl' of archive member 'inner.bin'" in refusal.message


def test_zip_application_with_main_is_refused(tmp_path, marker):
    data = f.pyz(marker)
    assert runs_payload(tmp_path, data, "python")
    refusal = refused(data)
    assert refusal.reason == "executable"
    assert "__main__.py" in refusal.message


def test_main_py_anywhere_in_a_nested_zip_is_refused(marker):
    data = f.zip_of({"weights/inner.zip": f.pyz(marker)})
    assert refused(data).reason == "executable"


def test_deeply_nested_safetensors_json_is_refused_not_a_crash():
    refusal = refused(f.deep_json_safetensors(), "model.safetensors")
    assert refusal.reason == "malformed_safetensors"
    assert "nested too deeply" in refusal.message


@pytest.mark.parametrize("name, compress", [("gzip", gzip.compress), ("bz2", bz2.compress),
                                            ("xz", lzma.compress)])
def test_compressed_stream_holding_an_unsafe_pickle_is_refused(tmp_path, marker, name, compress):
    data = compress(f.marker_pickle(marker, before=b"I0x10\n"))
    assert runs_payload(tmp_path, data, name)
    refusal = refused(data)
    assert refusal.reason == "unsafe_pickle"
    assert "content of the file" in refusal.message


def test_executable_inside_a_gzip_inside_a_zip_is_refused():
    refusal = refused(f.zip_of({"tool.gz": gzip.compress(f.ELF)}))
    assert refusal.reason == "executable"


def test_stack_global_of_strings_the_walk_cannot_name_is_refused(tmp_path, marker):
    # STRING opcodes decode to str in the unpickler: module and name come from the stack.
    data = (b"S'builtins'\nS'exec'\n\x93"
            + f.binunicode(f"open({str(marker)!r}, 'w').close()") + b"\x85R.")
    assert runs_payload(tmp_path, data, "pickle")
    refusal = refused(data)
    assert refusal.reason == "unsafe_pickle"
    assert "cannot resolve" in refusal.message


def test_extension_opcodes_in_a_pickle_are_refused():
    refusal = refused(b"\x80\x02\x82\xf0)R.")
    assert refusal.reason == "unsafe_pickle"
    assert "extension registry" in refusal.message


def test_extension_opcodes_are_refused_anywhere_when_a_code_is_registered():
    import copyreg
    import pickle

    data = b"\x82\xf0)R."
    # Unregistered (the default everywhere): the unpickler raises, nothing is imported.
    with pytest.raises(ValueError, match="unregistered extension code"):
        pickle.loads(data)
    assert scan(data).file_format == "binary"
    copyreg.add_extension("collections", "OrderedDict", 0xF0)
    try:
        refusal = refused(data)
    finally:
        copyreg.remove_extension("collections", "OrderedDict", 0xF0)
    assert refusal.reason == "unsafe_pickle"
    assert "extension registry" in refusal.message


def test_truncated_pickle_after_an_import_is_unscannable():
    refusal = refused(b"\x80\x02ccollections\nOrderedDict\n)")
    assert refusal.reason == "unscannable"
    assert "truncated" in refusal.message


def test_protocol_4_header_then_garbage_is_unscannable():
    refusal = refused(b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")
    assert refusal.reason == "unscannable"


def test_global_name_cut_by_the_end_of_the_data_is_unscannable():
    assert refused(b"cos\nsys").reason == "unscannable"


# Benign files that must still be accepted.


def test_real_layout_torch_zip_is_accepted():
    report = scan(f.real_torch_zip(tensors=5), "model.pt")
    assert report.file_format == "pytorch-zip"
    assert "torch._utils._rebuild_tensor_v2" in report.summary
    assert "torch.FloatStorage" in report.summary


@pytest.mark.parametrize("protocol", range(6))
def test_plain_safe_pickles_are_accepted_at_every_protocol(protocol):
    import pickle
    from collections import OrderedDict

    for value in ({"a": [1, 2.5, "x"], "b": (1, None, True)}, [1.0] * 3000,
                  OrderedDict(w=[0.5], b={1, 2}), {"blob": b"\x00\xff" * 40_000}):
        assert scan(pickle.dumps(value, protocol=protocol)).file_format == "pickle"


def test_numpy_numeric_arrays_are_accepted():
    for array in (np.arange(12, dtype="<f4").reshape(3, 4), np.zeros((2, 2), dtype=[("a", "<i4"),
                                                                                   ("b", "<f8")])):
        buffer = io.BytesIO()
        np.save(buffer, array)
        assert scan(buffer.getvalue()).file_format == "numpy-npy"
    for save in (np.savez, np.savez_compressed):
        buffer = io.BytesIO()
        save(buffer, a=np.arange(5), b=np.ones((3, 3)))
        assert scan(buffer.getvalue()).file_format == "numpy-npz"


def test_npy_format_version_3_is_read_by_numpy():
    buffer = io.BytesIO()
    with pytest.warns(UserWarning, match="format 3.0"):  # a non-Latin-1 field name
        np.save(buffer, np.zeros(3, dtype=[("重", "<f4")]))
    assert buffer.getvalue()[6:8] == b"\x03\x00"
    assert scan(buffer.getvalue()).file_format == "numpy-npy"


def test_pickled_numpy_array_is_accepted():
    import pickle

    assert scan(pickle.dumps(np.arange(10.0), protocol=4)).file_format == "pickle"


def test_safetensors_gguf_random_bytes_and_compressed_safe_pickles_are_accepted():
    assert scan(f.safetensors()).file_format == "safetensors"
    assert scan(b"GGUF\x03\x00\x00\x00" + bytes(range(256)) * 4).file_format == "gguf"
    rng = np.random.default_rng(8)
    assert scan(rng.bytes(1 << 16)).file_format == "binary"
    assert scan(np.linspace(-1, 1, 4096, dtype="<f4").tobytes()).file_format == "binary"
    assert scan(gzip.compress(f.benign_pickle())).file_format == "gzip"
    assert scan(os.urandom(0)).file_format == "empty"
