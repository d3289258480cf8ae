"""The compiled SGD / Adam updates (_C.sgd_update, _C.adam_update) against the numpy lines that
run for arrays they do not take (here: a non-contiguous parameter view), on arrays large enough
to be split across threads, float32 and float64; test_nn_layers checks both against torch.optim."""
import numpy as np
import pytest

from fastconv import _C, _cpu


SGD_CASES = [dict(momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False),
             dict(momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False),
             dict(momentum=0.9, dampening=0.3, weight_decay=1e-2, nesterov=False),
             dict(momentum=0.8, dampening=0.0, weight_decay=1e-3, nesterov=True)]


def pair(rng, dtype, n=100_003):
    """The same values twice: contiguous (compiled path) and a strided view (numpy path)."""
    a = rng.standard_normal(n).astype(dtype)
    strided = np.zeros(2 * n, dtype)
    strided[::2] = a
    return a, strided[::2]


@pytest.mark.parametrize("kw", SGD_CASES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_update_matches_numpy(kw, dtype):
    rng = np.random.default_rng(1)
    fused, plain = pair(rng, dtype)
    assert _cpu._fused_update_ok(fused, fused) and not _cpu._fused_update_ok(plain, plain)
    bufs = [np.zeros_like(fused), np.zeros_like(fused)] if kw["momentum"] else [None, None]
    for step in range(3):
        g = rng.standard_normal(fused.size).astype(dtype)
        for p, buf in zip((fused, plain), bufs):
            _cpu.sgd_step(p, g, buf, 0.05, first=step == 0, **kw)
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(fused, plain, rtol=tol, atol=tol)
    if kw["momentum"]:
        np.testing.assert_allclose(bufs[0], bufs[1], rtol=tol, atol=tol)


@pytest.mark.parametrize("wd", [0.0, 0.05])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_update_matches_numpy(wd, dtype):
    rng = np.random.default_rng(2)
    fused, plain = pair(rng, dtype)
    states = [(np.zeros_like(fused), np.zeros_like(fused)) for _ in range(2)]
    b1, b2 = 0.9, 0.999
    for t in range(1, 4):
        g = rng.standard_normal(fused.size).astype(dtype)
        for p, (m, v) in zip((fused, plain), states):
            _cpu.adam_step(p, g, m, v, 1e-2, b1, b2, 1 - b1 ** t, 1 - b2 ** t, 1e-8, wd)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(fused, plain, rtol=tol, atol=tol)
    for a, b in zip(states[0], states[1]):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_update_checks_its_arrays():
    p = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="grad must have shape"):
        _C.sgd_update(p, np.zeros(5, np.float32), None, 0.1, 0.0, 0.0, 0.0, False, False)
    with pytest.raises(TypeError, match="momentum_buffer has dtype"):
        _C.sgd_update(p, np.zeros(4, np.float32), np.zeros(4), 0.1, 0.9, 0.0, 0.0, False, False)
    with pytest.raises(ValueError, match="param must be writable"):
        ro = np.zeros(4, np.float32)
        ro.flags.writeable = False
        _C.adam_update(ro, p, p.copy(), p.copy(), 0.1, 0.9, 0.99, 0.1, 0.01, 1e-8, 0.0)
