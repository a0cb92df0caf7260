"""Red-team corpus for the artifact scanner: every attack is a real file built in the test.

Each malicious file is first shown to be a real attack (the loader a victim would use runs its
payload in a fresh interpreter and a marker file appears), then the scanner must refuse it, and
scanning itself must not run anything. The benign files are what a model registry must still
accept. Written against the interface only: ``scan_artifact(file, *, size, filename)`` returns a
report or raises ``ScanRefused``.
"""

import io
import pickletools
import tracemalloc
import zipfile
from collections import OrderedDict

import pytest

from models_app.scanning import ScanRefused, scan_artifact
from tests.limits import address_space_cap
from tests.security import attack_files as af

# The scanner may read its limits from the registry's parameters.
pytestmark = pytest.mark.django_db

MEMORY_BOUND = 64 * af.MIB


def scan(data: bytes, filename: str = ""):
    return scan_artifact(io.BytesIO(data), size=len(data), filename=filename)


@pytest.mark.parametrize("attack", af.ATTACKS, ids=lambda a: a.id)
def test_attack_is_refused(attack, tmp_path):
    marker = tmp_path / "pwned"
    data = attack.build(str(marker))

    with pytest.raises(ScanRefused) as caught:
        scan(data, attack.filename)

    if attack.reason:
        assert caught.value.reason == attack.reason
    assert caught.value.message
    assert not marker.exists(), "scanning ran the payload"


@pytest.mark.parametrize("attack", [a for a in af.ATTACKS if a.steps],
                         ids=lambda a: a.id)
def test_attack_runs_code_when_loaded(attack, tmp_path):
    """The file is a real attack: the victim's loader runs the payload."""
    marker = tmp_path / "pwned"
    path = tmp_path / (attack.filename or "artifact.bin")
    path.write_bytes(attack.build(str(marker)))

    result = af.load(str(path), attack.steps)

    assert marker.exists(), result.stderr.decode()[-2000:]


@pytest.mark.parametrize("attack", [a for a in af.ATTACKS if "pickletools" in a.tags],
                         ids=lambda a: a.id)
def test_prefix_opcode_defeats_pickletools(attack, tmp_path):
    """The trick is real: pickletools cannot parse what CPython's unpickler runs."""
    with pytest.raises(ValueError):
        pickletools.dis(attack.build(str(tmp_path / "pwned")), out=io.StringIO())


@pytest.mark.parametrize("bomb", af.BOMBS, ids=lambda b: b.id)
def test_resource_bomb_is_refused_in_bounded_memory(bomb):
    data = bomb.build()

    tracemalloc.start()
    try:
        with address_space_cap(1 << 30), pytest.raises(ScanRefused):
            scan(data, bomb.filename)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert peak < MEMORY_BOUND, f"peak {peak / af.MIB:.1f} MiB scanning {len(data)} bytes"


@pytest.mark.parametrize("build, file_format",
                         [pytest.param(build, fmt, id=name) for name, build, fmt in af.BENIGN])
def test_benign_file_is_accepted(build, file_format):
    report = scan(build())

    if file_format:
        assert report.file_format == file_format
    assert report.summary


def _numpy_files():
    numpy = pytest.importorskip("numpy")
    weights = numpy.arange(12, dtype=numpy.float32).reshape(3, 4)
    npy, npz, npz_compressed = io.BytesIO(), io.BytesIO(), io.BytesIO()
    numpy.save(npy, weights)
    numpy.savez(npz, weights=weights, bias=numpy.zeros(4, dtype=numpy.float16))
    numpy.savez_compressed(npz_compressed, weights=weights, steps=numpy.arange(3))
    return {"numpy-save": npy.getvalue(), "numpy-savez": npz.getvalue(),
            "numpy-savez-compressed": npz_compressed.getvalue()}


@pytest.mark.parametrize("name", ["numpy-save", "numpy-savez", "numpy-savez-compressed"])
def test_files_written_by_numpy_are_accepted(name):
    report = scan(_numpy_files()[name])

    if name != "numpy-save":
        assert report.file_format == "numpy-npz"


def test_checkpoint_written_by_torch_save_is_accepted():
    pytest.importorskip("torch")

    report = scan(af.torch_save_bytes(), "model.pt")

    assert report.file_format == "pytorch-zip"


def test_hand_built_torch_layout_is_what_torch_writes():
    """Without torch in CI, the hand-built checkpoint stands in for torch.save's output."""
    torch = pytest.importorskip("torch")

    loaded = torch.load(io.BytesIO(af.torch_zip()), weights_only=True)

    assert loaded["weight"].tolist() == [0.0, 1.0, 2.0, 3.0]
    saved = io.BytesIO()
    torch.save(OrderedDict(weight=torch.arange(4, dtype=torch.float32)), saved)
    with zipfile.ZipFile(saved) as real:
        assert real.read("archive/data.pkl") == af.torch_data_pkl(), "torch changed its layout"
