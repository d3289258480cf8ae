"""PyTorch's own conformance inputs (OpInfo sample generators from
torch.testing._internal.common_methods_invocations.op_db) run through fastconv.functional.

For every OpInfo whose op fastconv.functional implements: forward in float32 and float64
(same shape, values within 1e-4 / 1e-10), and in float64 every gradient fastconv provides
against torch.autograd.grad with a random grad_output. Each test walks all samples of one op
and dtype and fails listing every mismatching sample. Dropout is random on both sides, so
its forward is checked for structure (every output 0 or x/(1-p)) and its backward against
torch's own mask.
"""
from __future__ import annotations

import numpy as np
import pytest

import fastconv
import fastconv.functional as F

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")  # op_db's module imports it
from torch.testing._internal.common_methods_invocations import op_db  # noqa: E402

TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-10}
NUMPY_DTYPE = {torch.float32: np.float32, torch.float64: np.float64}


def _np(t):
    return None if t is None else t.detach().numpy()


def _close(got, want, tol, what):
    want = _np(want) if isinstance(want, torch.Tensor) else want
    got = np.asarray(got)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != torch's {want.shape}"
    if want.dtype.kind == "f":
        assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != torch's {want.dtype}"
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=what)
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


def _torch_grads(out, inputs, seed=0):
    """torch.autograd.grad of out with a seeded random grad_output; (grad_output, grads)."""
    gen = torch.Generator().manual_seed(seed)
    dy = torch.randn(out.shape, generator=gen, dtype=out.dtype)
    wanted = [t for t in inputs if t is not None and t.requires_grad]
    grads = iter(torch.autograd.grad(out, wanted, dy, allow_unused=True))
    return _np(dy), [next(grads) if t is not None and t.requires_grad else None for t in inputs]


# ---------------------------------------------------------------------------- per-op checks
# check(op, sample, tol, grads) runs the sample through fastconv (and, when grads, its
# backward functions) and compares with torch.

def _check_conv2d(op, s, tol, grads):
    x, w = s.input, s.args[0]
    b = s.args[1] if len(s.args) > 1 else s.kwargs.get("bias")
    geo = {k: s.kwargs[k] for k in ("stride", "padding", "dilation", "groups") if k in s.kwargs}
    out = op(x, w, b, **geo)
    _close(F.conv2d(_np(x), _np(w), _np(b), **geo), out, tol, "output")
    if grads:
        dy, (gx, gw, gb) = _torch_grads(out, [x, w, b])
        _close(F.conv2d_input(x.shape, _np(w), dy, **geo), gx, tol, "grad input")
        _close(F.conv2d_weight(_np(x), w.shape, dy, **geo), gw, tol, "grad weight")
        if b is not None:
            _close(dy.sum(axis=tuple(i for i in range(dy.ndim) if i != dy.ndim - 3)), gb, tol, "grad bias")


def _check_max_pool2d(op, s, tol, grads):
    kw = dict(s.kwargs, return_indices=True)
    out, idx = op(s.input, *s.args, **kw)
    y, got_idx = F.max_pool2d(_np(s.input), *s.args, **kw)
    _close(y, out, tol, "output")
    _close(got_idx, idx, tol, "indices")
    if grads:
        dy, (gx,) = _torch_grads(out, [s.input])
        _close(F.max_pool2d_backward(dy, got_idx, s.input.shape), gx, tol, "grad input")


def _check_avg_pool2d(op, s, tol, grads):
    out = op(s.input, *s.args, **s.kwargs)
    _close(F.avg_pool2d(_np(s.input), *s.args, **s.kwargs), out, tol, "output")
    if grads:
        dy, (gx,) = _torch_grads(out, [s.input])
        _close(F.avg_pool2d_backward(dy, s.input.shape, *s.args, **s.kwargs), gx, tol, "grad input")


def _check_adaptive_avg_pool2d(op, s, tol, grads):
    out = op(s.input, *s.args, **s.kwargs)
    _close(F.adaptive_avg_pool2d(_np(s.input), *s.args, **s.kwargs), out, tol, "output")
    if grads:
        dy, (gx,) = _torch_grads(out, [s.input])
        _close(F.adaptive_avg_pool2d_backward(dy, s.input.shape), gx, tol, "grad input")


def _check_adaptive_max_pool2d(op, s, tol, grads):
    out, idx = op(s.input, s.args[0], True)
    y, got_idx = F.adaptive_max_pool2d(_np(s.input), s.args[0], True)
    _close(y, out, tol, "output")
    _close(got_idx, idx, tol, "indices")
    if not s.args[1]:  # return_indices=False returns the values alone
        _close(F.adaptive_max_pool2d(_np(s.input), *s.args), out, tol, "output without indices")
    if grads:
        dy, (gx,) = _torch_grads(out, [s.input])
        _close(F.adaptive_max_pool2d_backward(dy, got_idx, s.input.shape), gx, tol, "grad input")


def _check_linear(op, s, tol, grads):
    x, w = s.input, s.args[0]
    b = s.args[1] if len(s.args) > 1 else None
    out = op(x, w, b)
    _close(F.linear(_np(x), _np(w), _np(b)), out, tol, "output")
    if grads:
        dy, (gx, gw, gb) = _torch_grads(out, [x, w, b])
        got = F.linear_backward(_np(x), _np(w), dy, needs_bias=b is not None)
        for g, want, name in zip(got, (gx, gw, gb), ("input", "weight", "bias")):
            if want is not None:
                _close(g, want, tol, f"grad {name}")


def _elementwise(forward, backward):
    def check(op, s, tol, grads):
        out = op(s.input, *s.args, **s.kwargs)
        y = forward(_np(s.input))
        _close(y, out, tol, "output")
        if grads:
            dy, (gx,) = _torch_grads(out, [s.input])
            _close(backward(dy, y), gx, tol, "grad input")
    return check


def _softmax_like(forward, backward):
    def check(op, s, tol, grads):
        kw = {k: NUMPY_DTYPE[v] if k == "dtype" else v for k, v in s.kwargs.items()}
        out = op(s.input, *s.args, **s.kwargs)
        y = forward(_np(s.input), *s.args, **kw)
        _close(y, out, tol, "output")
        if grads:
            dy, (gx,) = _torch_grads(out, [s.input])
            _close(backward(dy, y, *s.args), gx, tol, "grad input")
    return check


def _check_cross_entropy(op, s, tol, grads):
    x, target = s.input, s.args[0]
    kw = {k: _np(v) if isinstance(v, torch.Tensor) else v for k, v in s.kwargs.items()}
    out = op(x, target, **s.kwargs)
    _close(F.cross_entropy(_np(x), _np(target), **kw), out, tol, "loss")
    if grads:
        dy, (gx,) = _torch_grads(out, [x])
        _close(F.cross_entropy_backward(_np(x), _np(target), **kw, grad_output=dy), gx, tol, "grad input")


def _check_dropout(op, s, tol, grads):
    p, training = s.kwargs.get("p", 0.5), s.kwargs.get("training", True)
    x = _np(s.input)
    y, mask = F.dropout(x, p, training, generator=0, return_mask=True)
    assert y.shape == x.shape and y.dtype == x.dtype
    if not training or p == 0:
        np.testing.assert_array_equal(y, x)
    else:
        kept = y != 0
        np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=tol, atol=tol)
    if grads:
        out = op(s.input, *s.args, **s.kwargs)
        dy, (gx,) = _torch_grads(out, [s.input])
        # torch's own mask, read off its output (the sample inputs are non-zero)
        torch_mask = None if not training or p == 0 else \
            (_np(out) != 0).astype(x.dtype) / (1 - p) if p < 1 else np.zeros_like(x)
        _close(F.dropout_backward(dy, torch_mask), gx, tol, "grad input")


CHECKS = {
    ("nn.functional.conv2d", ""): _check_conv2d,
    ("nn.functional.max_pool2d", ""): _check_max_pool2d,
    ("nn.functional.avg_pool2d", ""): _check_avg_pool2d,
    ("nn.functional.adaptive_avg_pool2d", ""): _check_adaptive_avg_pool2d,
    ("nn.functional.adaptive_max_pool2d", ""): _check_adaptive_max_pool2d,
    ("nn.functional.linear", ""): _check_linear,
    ("nn.functional.relu", ""): _elementwise(F.relu, F.relu_backward),
    ("sigmoid", ""): _elementwise(F.sigmoid, F.sigmoid_backward),
    ("tanh", ""): _elementwise(F.tanh, F.tanh_backward),
    ("softmax", ""): _softmax_like(F.softmax, F.softmax_backward),
    ("softmax", "with_dtype"): _softmax_like(F.softmax, F.softmax_backward),
    ("log_softmax", ""): _softmax_like(F.log_softmax, F.log_softmax_backward),
    ("log_softmax", "with_dtype"): _softmax_like(F.log_softmax, F.log_softmax_backward),
    ("nn.functional.cross_entropy", ""): _check_cross_entropy,
    ("nn.functional.dropout", ""): _check_dropout,
}
OPINFOS = {(op.name, op.variant_test_name): op for op in op_db if (op.name, op.variant_test_name) in CHECKS}

# max_pool2d has 1,440 samples per dtype: each of its 288 distinct (input rank, options)
# combinations at 5 input shapes. The default run takes the first shape of each combination;
# `pytest -m slow` runs them all.
SUBSAMPLED = {("nn.functional.max_pool2d", "")}


def _first_of_each_option_combination(samples):
    seen = set()
    for s in samples:
        key = (s.input.dim(), repr(s.args), repr(sorted(s.kwargs.items())))
        if key not in seen:
            seen.add(key)
            yield s


@pytest.fixture(autouse=True, scope="module")
def single_threaded():
    """The samples are tiny: alternating two multi-threaded runtimes on them measured 12 ms a
    call from thread hand-offs on a busy 2-core machine, against 0.02 ms on one thread."""
    previous = torch.get_num_threads(), fastconv.get_num_threads()
    torch.set_num_threads(1)
    fastconv.set_num_threads(1)
    yield
    torch.set_num_threads(previous[0])
    fastconv.set_num_threads(previous[1])


def test_every_checked_op_is_in_op_db():
    assert set(OPINFOS) == set(CHECKS), set(CHECKS) - set(OPINFOS)


DTYPES = pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])


@DTYPES
@pytest.mark.parametrize("key", sorted(CHECKS), ids=lambda k: "-".join(filter(None, k)))
def test_opinfo_samples(key, dtype):
    _run_samples(key, dtype, subsample=key in SUBSAMPLED)


@pytest.mark.slow
@DTYPES
@pytest.mark.parametrize("key", sorted(SUBSAMPLED), ids=lambda k: "-".join(filter(None, k)))
def test_opinfo_all_samples(key, dtype):
    _run_samples(key, dtype, subsample=False)


def _run_samples(key, dtype, subsample):
    torch.manual_seed(0)  # the sample generators draw from torch's global generator
    op, check = OPINFOS[key], CHECKS[key]
    grads = dtype == torch.float64
    samples = op.sample_inputs("cpu", dtype, requires_grad=grads)
    if subsample:
        samples = _first_of_each_option_combination(samples)
    failures, count = [], 0
    for count, sample in enumerate(samples, 1):
        try:
            check(op.op, sample, TOLERANCE[dtype], grads)
        except (AssertionError, ValueError, TypeError) as e:
            failures.append(f"{sample.summary() if hasattr(sample, 'summary') else sample}: "
                            f"{type(e).__name__}: {str(e).strip()[:300]}")
    print(f"{key}: {count - len(failures)}/{count} samples match")
    assert count > 0
    assert not failures, f"{len(failures)}/{count} samples differ:\n" + "\n".join(failures[:10])


# torch's parameters for the ops whose Python objects carry no signature (C builtins and
# boolean-dispatch wrappers), as torch.nn.functional documents them
_DOCUMENTED_TORCH_PARAMETERS = {
    "conv2d": ["input", "weight", "bias", "stride", "padding", "dilation", "groups"],
    "avg_pool2d": ["input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"],
    "linear": ["input", "weight", "bias"],
    "max_pool2d": ["input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"],
    "adaptive_max_pool2d": ["input", "output_size", "return_indices"],
}


@pytest.mark.parametrize("name", ["conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d",
                                  "linear", "relu", "sigmoid", "tanh", "dropout", "softmax", "log_softmax",
                                  "cross_entropy"])
def test_torch_style_positional_calls_reach_the_same_parameters(name):
    """fastconv's positional parameters are a prefix of torch's, in torch's order; whatever
    fastconv adds (algorithm=, out=, generator=, ...) is keyword-only."""
    import inspect
    ours = inspect.signature(getattr(F, name)).parameters.values()
    positional = [p.name for p in ours if p.kind is p.POSITIONAL_OR_KEYWORD]
    torch_names = _DOCUMENTED_TORCH_PARAMETERS.get(name) or \
        list(inspect.signature(getattr(torch.nn.functional, name)).parameters)
    assert positional == torch_names[:len(positional)]
    extra = [p.name for p in ours if p.name not in torch_names]
    assert all(p.kind is p.KEYWORD_ONLY for p in ours if p.name in extra), extra
