"""Weights round-trip through safetensors / npz; bad state dicts are refused with every problem listed."""
import numpy as np
import pytest

import fastconv
from fastconv import models


@pytest.mark.parametrize("ext", [".safetensors", ".npz"])
def test_save_load_roundtrip(tmp_path, ext):
    a = models.lenet5("relu", "max", seed=1)
    b = models.lenet5("relu", "max", seed=2)
    x = np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32)
    assert not np.allclose(a.forward(x), b.forward(x))
    path = fastconv.save(a, tmp_path / ("w" + ext))
    sd = fastconv.load(path)
    assert sorted(sd) == sorted(a.state_dict())
    fastconv.load_into(b, path)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    if ext == ".npz":  # no pickled objects inside
        with np.load(path, allow_pickle=False) as z:
            assert all(z[k].dtype == np.float32 for k in z.files)


def test_load_state_dict_reports_all_problems():
    m = models.lenet5()
    sd = dict(m.state_dict())
    del sd["features.0.bias"]
    sd["classifier.9.weight"] = np.zeros(3, np.float32)
    sd["features.3.weight"] = np.zeros((16, 6, 3, 3), np.float32)
    with pytest.raises(ValueError) as e:
        m.load_state_dict(sd)
    msg = str(e.value)
    assert "features.0.bias" in msg and "classifier.9.weight" in msg and "features.3.weight" in msg


def test_load_torch_tensors():
    torch = pytest.importorskip("torch")
    m = models.lenet5()
    sd = {k: torch.full(v.shape, 0.5) for k, v in m.state_dict().items()}
    m.load_state_dict(sd)
    assert all((p.data == 0.5).all() and p.data.dtype == np.float32 for p in m.parameters())
