"""MNIST IDX reading (real files and corrupt ones written here), digits, the batch iterator."""
import gzip

import numpy as np
import pytest

from fastconv import data




def test_real_mnist_test_split(mnist_dir):
    x, y = data.mnist(mnist_dir, "test")
    assert x.shape == (10000, 1, 28, 28) and x.dtype == np.uint8
    assert y.shape == (10000,) and y.dtype == np.int64
    assert np.bincount(y).min() > 800 and x.max() == 255
    xf, _ = data.mnist(mnist_dir, "test", dtype="float32", pad=2)
    assert xf.shape == (10000, 1, 32, 32) and xf.dtype == np.float32 and xf.max() == 1.0
    np.testing.assert_array_equal(xf[:5, :, 2:30, 2:30] * 255, x[:5].astype(np.float32))
    assert (xf[:, :, :2] == 0).all()


def write_idx(path, arr, magic=None, gz=False, chop=0):
    dims = arr.shape
    magic = magic if magic is not None else (0x803 if arr.ndim == 3 else 0x801)
    raw = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims) + arr.astype(np.uint8).tobytes()
    raw = raw[:len(raw) - chop] if chop else raw
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)


def make_set(tmp_path, n=5, gz=False, **kw):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (n, 28, 28))
    labels = rng.integers(0, 10, n)
    ext = ".gz" if gz else ""
    write_idx(tmp_path / ("t10k-images-idx3-ubyte" + ext), imgs, gz=gz, **kw)
    write_idx(tmp_path / ("t10k-labels-idx1-ubyte" + ext), labels, gz=gz)
    return imgs, labels


@pytest.mark.parametrize("gz", [False, True])
def test_written_idx_roundtrip(tmp_path, gz):
    imgs, labels = make_set(tmp_path, gz=gz)
    x, y = data.mnist(tmp_path, "test")
    np.testing.assert_array_equal(x[:, 0], imgs)
    np.testing.assert_array_equal(y, labels)


def test_truncated_file_is_rejected(tmp_path):
    make_set(tmp_path, chop=100)
    with pytest.raises(ValueError, match="truncated"):
        data.mnist(tmp_path, "test")


def test_bad_magic_is_rejected(tmp_path):
    make_set(tmp_path, magic=0x0801)
    with pytest.raises(ValueError, match="magic"):
        data.mnist(tmp_path, "test")


def test_corrupt_gzip_is_rejected(tmp_path):
    make_set(tmp_path, gz=True)
    p = tmp_path / "t10k-images-idx3-ubyte.gz"
    p.write_bytes(p.read_bytes()[:60])  # a gzip stream cut short
    with pytest.raises(ValueError, match="t10k-images"):
        data.mnist(tmp_path, "test")


def test_count_mismatch_and_missing(tmp_path):
    rng = np.random.default_rng(1)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", rng.integers(0, 256, (4, 28, 28)))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", rng.integers(0, 10, 3))
    with pytest.raises(ValueError, match="4 images but"):
        data.mnist(tmp_path, "test")
    with pytest.raises(FileNotFoundError, match="download=True"):
        data.mnist(tmp_path, "train")
    with pytest.raises(ValueError, match="split"):
        data.mnist(tmp_path, "val")


def test_digits_resized():
    x, y = data.digits()
    assert x.shape == (1797, 1, 32, 32) and x.dtype == np.float32 and y.shape == (1797,)
    assert 0 <= x.min() and x.max() <= 1.0
    tr, te = data.digits(split="train"), data.digits(split="test")
    assert len(tr[1]) + len(te[1]) == 1797 and abs(len(te[1]) - 359) <= 1
    # bilinear resize matches torch's align_corners=False interpolation
    torch = pytest.importorskip("torch")
    small = np.random.default_rng(0).random((2, 1, 8, 8)).astype(np.float32)
    ref = torch.nn.functional.interpolate(torch.from_numpy(small), size=(32, 32), mode="bilinear",
                                          align_corners=False).numpy()
    np.testing.assert_allclose(data.resize_bilinear(small, 32), ref, atol=1e-6)


def test_loader_shuffle_drop_last_normalise():
    x = np.arange(10 * 4, dtype=np.uint8).reshape(10, 1, 2, 2)
    y = np.arange(10)
    dl = data.DataLoader(x, y, batch_size=4, seed=3, drop_last=True, mean=0.5, std=0.25)
    assert len(dl) == 2
    e1 = [b[1].copy() for b in dl]
    e2 = [b[1].copy() for b in dl]
    assert all(len(b) == 4 for b in e1) and not np.array_equal(np.concatenate(e1), np.concatenate(e2))
    again = [b[1] for b in data.DataLoader(x, y, batch_size=4, seed=3, drop_last=True)]
    np.testing.assert_array_equal(np.concatenate(e1), np.concatenate(again))
    xb, yb = next(iter(data.DataLoader(x, y, batch_size=3, shuffle=False, mean=0.5, std=0.25)))
    np.testing.assert_allclose(xb, (x[:3] / 255 - 0.5) / 0.25, rtol=1e-6)
    assert xb.dtype == np.float32 and len(data.DataLoader(x, y, 3, shuffle=False)) == 4
    with pytest.raises(ValueError, match="labels"):
        data.DataLoader(x, y[:5])
