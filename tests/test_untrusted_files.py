"""Files from outside are untrusted: weight files (safetensors, npz), IDX files and images.
Each crafted file below is refused with a ValueError naming the file and the problem; none
executes code, allocates what its header claims, or leaks the format library's own errors."""
import io
import json
import pickle
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from children import child_kwargs
from PIL import Image

import fastconv
from fastconv import data, models
from fastconv.data import images
from fastconv.serialize import WeightFileError


def write_safetensors(path, header, payload=b""):
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + payload)
    return path


def tensor(dtype, shape, offsets):
    return {"dtype": dtype, "shape": shape, "data_offsets": offsets}


SAFETENSORS_CASES = {  # name: (header, payload, words the message must contain)
    "header claims more data than the file holds":
        ({"w": tensor("F32", [10], [0, 40])}, b"\0" * 8, "not a valid safetensors"),
    "shape overflows 64 bits":
        ({"w": tensor("F32", [2 ** 62, 2 ** 62], [0, 16])}, b"\0" * 16, "overflow"),
    "integer weights": ({"w": tensor("I64", [2], [0, 16])}, b"\0" * 16, "dtype I64"),
    "bfloat16 (numpy has none)": ({"w": tensor("BF16", [2], [0, 4])}, b"\0" * 4, "dtype BF16"),
    "float8": ({"w": tensor("F8_E4M3", [2], [0, 2])}, b"\0" * 2, "dtype F8_E4M3"),
    "offsets past the end": ({"w": tensor("F32", [1], [0, 4]), "v": tensor("F32", [1], [4, 8])}, b"\0" * 4,
                             "not a valid safetensors"),
}


@pytest.mark.parametrize("case", sorted(SAFETENSORS_CASES))
def test_crafted_safetensors_are_refused(tmp_path, case):
    header, payload, words = SAFETENSORS_CASES[case]
    path = write_safetensors(tmp_path / "w.safetensors", header, payload)
    with pytest.raises(WeightFileError) as e:
        fastconv.load(path)
    assert str(e.value).startswith(str(path)) and words in str(e.value), str(e.value)


@pytest.mark.parametrize("raw", [b"", b"\x05", struct.pack("<Q", 2 ** 63) + b"{}", struct.pack("<Q", 5) + b"{{{{{",
                                 b"PK\x03\x04 not a zip", pickle.dumps({"w": np.zeros(3, np.float32)})])
@pytest.mark.parametrize("ext", [".safetensors", ".npz"])
def test_garbage_weight_files_are_refused(tmp_path, raw, ext):
    path = tmp_path / ("w" + ext)
    path.write_bytes(raw)
    with pytest.raises(WeightFileError, match=str(path)):
        fastconv.load(path)


class _WritesAMarker:
    """Unpickling this creates a file: proof that a loader ran code from the file."""
    marker = None

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickled_objects_in_npz_never_run(tmp_path):
    _WritesAMarker.marker = tmp_path / "code-ran"
    path = tmp_path / "w.npz"
    np.savez(path, w=np.array([_WritesAMarker()], dtype=object), allow_pickle=True)
    with pytest.raises(WeightFileError, match="dtype object"):
        fastconv.load(path)
    assert not _WritesAMarker.marker.exists()


def npz_with_member(path, name, npy_bytes):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(name, npy_bytes)
    return path


def npy_bytes(arr, shape=None):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": np.lib.format.dtype_to_descr(arr.dtype),
                                               "fortran_order": False, "shape": shape or arr.shape})
    return buf.getvalue() + arr.tobytes()


@pytest.mark.parametrize("shape,words", [((10 ** 6, 10 ** 6), "declares shape"),  # ~4 TB claimed, 16 B held
                                         ((2 ** 40,) * 4, "declares shape"),       # past 64 bits
                                         ((3,), "declares shape")])                 # one value short
def test_npz_header_lying_about_size_is_refused_before_allocating(tmp_path, shape, words):
    path = npz_with_member(tmp_path / "w.npz", "w.npy", npy_bytes(np.zeros(4, np.float32), shape))
    with pytest.raises(WeightFileError, match=words):
        fastconv.load(path)


def test_npz_wrong_dtype_and_non_array_member(tmp_path):
    np.savez(tmp_path / "i.npz", w=np.arange(4))
    with pytest.raises(WeightFileError, match="'w' has dtype int64"):
        fastconv.load(tmp_path / "i.npz")
    path = npz_with_member(tmp_path / "t.npz", "notes.txt", b"hello")
    with pytest.raises(WeightFileError, match="'notes.txt' is not a .npy array"):
        fastconv.load(path)


@pytest.mark.parametrize("ext", [".safetensors", ".npz"])
def test_truncated_real_weight_file_and_wrong_model(tmp_path, ext):
    net = models.lenet5(seed=0)
    path = fastconv.save(net, tmp_path / ("w" + ext))
    raw = open(path, "rb").read()
    cut = tmp_path / ("cut" + ext)
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(WeightFileError, match="cut"):
        fastconv.load(cut)
    with pytest.raises(WeightFileError, match="shape mismatches") as e:  # right file, wrong net
        fastconv.load_into(models.vgg([(1, 4, 1)], num_classes=10, input_size=32, hidden=8), path)
    assert str(e.value).startswith(str(path))
    with pytest.raises(FileNotFoundError, match="no such weight file"):
        fastconv.load(tmp_path / ("missing" + ext))


# ------------------------------------------------------------------------------- IDX files

def idx_bytes(dims, payload, magic=0x803):
    return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims) + payload


def test_idx_header_claiming_terabytes_is_refused_before_reading(tmp_path):
    path = tmp_path / "big-idx3"
    path.write_bytes(idx_bytes((2 ** 32 - 1, 2 ** 32 - 1, 2 ** 32 - 1), b"\0" * 100))
    with pytest.raises(ValueError, match="more than the"):
        data.read_idx(path, 3)


def test_gzip_bomb_is_not_inflated_past_the_declared_size(tmp_path):
    import gzip
    path = tmp_path / "bomb-idx3.gz"
    with gzip.open(path, "wb") as f:  # declares 784 bytes, inflates to 64 MiB
        f.write(idx_bytes((1, 28, 28), b""))
        block = b"\0" * (1 << 20)
        for _ in range(64):
            f.write(block)
    assert path.stat().st_size < 200_000
    with pytest.raises(ValueError, match="holds more"):
        data.read_idx(path, 3)


def test_corrupt_deflate_stream_is_a_value_error(tmp_path):
    import gzip
    raw = bytearray(gzip.compress(idx_bytes((2, 28, 28), bytes(range(256)) * 6 + b"\0" * 32)))
    raw[20:30] = b"\xff" * 10  # inside the deflate data: zlib.error, not OSError
    path = tmp_path / "bad-idx3.gz"
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="bad-idx3.gz"):
        data.read_idx(path, 3)


# ---------------------------------------------------------------------------------- images

def test_image_round_trip_grey_and_rgb(tmp_path):
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "g.png")
    Image.fromarray(rgb).save(tmp_path / "c.png")
    np.testing.assert_array_equal(data.load_image(tmp_path / "g.png") * 255, grey[None].astype(np.float32))
    np.testing.assert_allclose(data.load_image(tmp_path / "c.png") * 255, rgb.transpose(2, 0, 1), atol=1e-4)
    assert data.load_image(tmp_path / "g.png", mode="RGB", size=(3, 4)).shape == (3, 3, 4)


@pytest.mark.parametrize("pixels_over", [1, images.MAX_PIXELS + 1])  # our limit, and past Pillow's own error
def test_decompression_bomb_is_refused(tmp_path, pixels_over):
    width = 20_000
    height = (images.MAX_PIXELS + pixels_over) // width + 1
    path = tmp_path / "bomb.png"
    Image.new("1", (width, height)).save(path)  # 1 bit per pixel, compresses to a few kB
    assert path.stat().st_size < 1_000_000
    with pytest.raises(ValueError, match="bomb|more than the"):
        data.load_image(path)


@pytest.mark.parametrize("raw", [b"", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, b"GIF89a\xff\xff\xff\xff", b"not an image"])
def test_unreadable_images_are_value_errors(tmp_path, raw):
    path = tmp_path / "x.png"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match="x.png"):
        data.load_image(path)


def test_truncated_png_is_a_value_error(tmp_path):
    path = tmp_path / "t.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:-2000])
    with pytest.raises(ValueError, match="t.png"):
        data.load_image(path)
    with pytest.raises(ValueError, match="no such image"):
        data.load_image(tmp_path / "missing.png")


# ---------------------------------------------------------------------------- memory

WORKSPACE_BEYOND_THE_LIMIT = """
import re, resource
import numpy as np
import fastconv.functional as F
F.conv2d(np.zeros((1, 2, 4, 4), np.float32), np.zeros((1, 2, 3, 3), np.float32), padding=1)  # pool started
size = int(re.search(r"VmSize:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) * 1024
resource.setrlimit(resource.RLIMIT_AS, (size + (256 << 20),) * 2)  # 256 MiB more address space
x, w = np.ones((1, 64, 1, 1), np.float32), np.ones((1, 64, 1, 1), np.float32)
try:  # the C++ padded-input workspace: 64 x 2001^2 floats = 1 GiB; the output only 16 MB
    F.conv2d(x, w, padding=1000, algorithm="direct")
except MemoryError as e:
    print("MemoryError:", e)
"""


def test_cpp_workspace_beyond_the_address_space_is_a_memory_error():
    """std::bad_alloc in the C++ workspace reaches Python as MemoryError; the process lives on."""
    r = subprocess.run([sys.executable, "-c", WORKSPACE_BEYOND_THE_LIMIT], capture_output=True, timeout=120,
                       **child_kwargs())
    assert r.returncode == 0 and "MemoryError: std::bad_alloc" in r.stdout, (r.returncode, r.stdout, r.stderr[-2000:])
