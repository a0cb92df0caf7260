"""The artifact scanner on real files built in the test."""


import pytest

from tests.security import factories as f
from tests.security.factories import refused, scan


@pytest.mark.parametrize("protocol", [0, 1, 2, 4, 5])
def test_pickle_calling_os_system_is_refused(protocol):
    refusal = refused(f.evil_pickle(protocol))
    assert refusal.reason == "unsafe_pickle"
    assert "system" in refusal.message


def test_torch_zip_holding_a_malicious_pickle_is_refused():
    refusal = refused(f.torch_zip(f.evil_pickle(2)), "model.pt")
    assert refusal.reason == "unsafe_pickle"
    assert "archive/data.pkl" in refusal.message


def test_npz_with_an_object_array_pickle_is_refused():
    refusal = refused(f.npz({"weights.npy": f.npy(f.evil_pickle(3))}))
    assert refusal.reason == "unsafe_pickle"
    assert "weights.npy" in refusal.message


def test_pickle_importing_something_outside_the_allow_list_is_refused():
    # Not on picklescan's deny-list, but not on the allow-list either: refused all the same.
    import pickle
    from decimal import Decimal

    refusal = refused(pickle.dumps(Decimal("1.5")))
    assert refusal.reason == "unsafe_pickle"
    assert "decimal.Decimal" in refusal.message


def test_elf_header_is_refused():
    assert refused(f.ELF).reason == "executable"
    assert "ELF" in refused(f.ELF).message


def test_pe_header_is_refused():
    assert refused(f.PE).reason == "executable"


@pytest.mark.parametrize("magic", f.MACHO_MAGICS, ids=lambda m: m.hex())
def test_every_mach_o_magic_is_refused(magic):
    refusal = refused(magic + b"\x00" * 64)
    assert refusal.reason == "executable"
    assert "Mach-O" in refusal.message


def test_shebang_script_is_refused():
    assert refused(f.SHEBANG).reason == "executable"


def test_executable_inside_a_zip_is_refused():
    refusal = refused(f.npz({"bin/tool": f.ELF}))
    assert refusal.reason == "executable"
    assert "bin/tool" in refusal.message


@pytest.mark.parametrize("data", [b"\x1f\x8b\x08\x00" + b"\x00" * 20, b"BZh91AY&SY",
                                  b"\xfd7zXZ\x00\x00"], ids=["gzip", "bzip2", "xz"])
def test_broken_compressed_streams_are_refused_as_malformed(data):
    assert refused(data).reason == "malformed_archive"


@pytest.mark.parametrize("data", [b"\x28\xb5\x2f\xfd" + b"\x00" * 20, b"\x04\x22\x4d\x18",
                                  b"7z\xbc\xaf\x27\x1c\x00", b"Rar!\x1a\x07\x00",
                                  b"x" * 257 + b"ustar" + b"\x00" * 250],
                         ids=["zstd", "lz4", "7z", "rar", "tar"])
def test_formats_that_cannot_be_scanned_are_refused(data):
    assert refused(data).reason == "unscannable"


def test_benign_safetensors_is_accepted():
    report = scan(f.safetensors())
    assert report.file_format == "safetensors"
    assert "2 tensor(s)" in report.summary


def test_benign_pickle_of_plain_data_is_accepted():
    report = scan(f.benign_pickle())
    assert report.file_format == "pickle"
    assert "collections.OrderedDict" in report.summary


def test_benign_torch_zip_and_numeric_npz_are_accepted():
    import pickle
    from collections import OrderedDict

    assert scan(f.torch_zip(pickle.dumps(OrderedDict(w=1), protocol=2))).file_format == (
        "pytorch-zip")
    assert scan(f.npz({"a.npy": f.npy(b"\x00" * 4, descr="<f4")})).file_format == "numpy-npz"


def test_other_binary_formats_are_accepted():
    assert scan(b"GGUF\x03\x00\x00\x00" + bytes(range(64))).file_format == "gguf"


@pytest.mark.parametrize(
    "data, fragment",
    [
        (f.safetensors(header_len=10**9), "exceeds"),
        (f.safetensors()[:-1], "outside"),
        (f.safetensors() + b"\x00" * 4, "cover"),
        (f.safetensors({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}},
                       b"\x00" * 4), "needs"),
        (f.safetensors({"t": {"dtype": "Q9", "shape": [1], "data_offsets": [0, 4]}},
                       b"\x00" * 4), "unknown dtype"),
        (f.safetensors({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
                        "b": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]}},
                       b"\x00" * 6), "gap or overlap"),
        (f.safetensors({"t": {"dtype": "U8", "shape": [-1], "data_offsets": [0, 0]}}),
         "non-negative"),
        (b"\x05\x00\x00\x00\x00\x00\x00\x00{bad}", "JSON"),
    ],
    ids=["length-past-end", "truncated", "trailing-bytes", "size-vs-shape", "dtype",
         "overlap", "negative-shape", "bad-json"],
)
def test_malformed_safetensors_headers_are_refused(data, fragment):
    refusal = refused(data, "model.safetensors")
    assert refusal.reason == "malformed_safetensors"
    assert fragment in refusal.message
