"""fastconv.torch's autograd Functions and functional forms against torch: gradcheck in float64
over a sweep of convolution and pooling options, forward and gradients against torch.nn.functional
in float32, and everyday use (no_grad, inference_mode, channels_last, non-contiguous, unbatched,
float64, bad arguments)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

import fastconv.torch as ft  # noqa: E402
from conftest import WINOGRAD_TOL32, rel_err  # noqa: E402
from fastconv.torch.functions import Conv2dFunction  # noqa: E402

# (stride, padding, dilation, groups, bias, algorithm)
CONV_CASES = [
    (1, 0, 1, 1, True, "auto"),
    (1, 1, 1, 1, False, "direct"),
    (2, 1, 1, 1, True, "direct"),
    ((2, 1), (2, 1), 1, 1, True, "auto"),
    (1, 0, 2, 1, True, "direct"),
    (1, (1, 2), (2, 1), 2, True, "direct"),
    (2, 0, 1, 4, False, "direct"),
    (1, "same", 1, 1, True, "auto"),
    (1, "same", 2, 2, False, "direct"),
    (1, "valid", 1, 2, True, "auto"),
    (1, 1, 1, 1, True, "winograd_f2"),
    (1, 2, 1, 2, True, "winograd_f4"),
    (1, 3, 1, 1, False, "winograd_f6"),   # padding 3: the input gradient falls back to direct
]

# (kernel_size, stride, padding, dilation, ceil_mode)
MAX_CASES = [(2, None, 0, 1, False), (3, 2, 1, 1, False), (3, 2, 1, 1, True), ((3, 2), (1, 2), (1, 0), 1, False),
             (2, 1, 0, 2, False), (3, 2, 1, (2, 1), True)]
# (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVG_CASES = [(2, None, 0, False, True, None), (3, 2, 1, False, True, None), (3, 2, 1, True, False, None),
             ((3, 2), (1, 2), (1, 1), False, False, None), (3, 1, 1, True, True, 4), (2, 2, 1, True, False, None)]


def conv_args(case, dtype, rng_seed, kernel=3, in_ch=4, out_ch=4, hw=(7, 6), n=2):
    stride, padding, dilation, groups, bias, algorithm = case
    g = torch.Generator().manual_seed(rng_seed)
    x = torch.randn(n, in_ch, *hw, dtype=dtype, generator=g)
    w = torch.randn(out_ch, in_ch // groups, kernel, kernel, dtype=dtype, generator=g)
    b = torch.randn(out_ch, dtype=dtype, generator=g) if bias else None
    return x, w, b, dict(stride=stride, padding=padding, dilation=dilation, groups=groups), algorithm


def distinct_input(shape, seed, dtype=torch.float64):
    """Random values far apart (no ties, so max-pool is differentiable at every point gradcheck probes)."""
    g = torch.Generator().manual_seed(seed)
    n = int(np.prod(shape))
    return (torch.randperm(n, generator=g).to(dtype) / n).reshape(shape)


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d_gradcheck_float64(case):
    x, w, b, kw, algorithm = conv_args(case, torch.float64, 0, n=1, hw=(6, 5))
    inputs = [t.requires_grad_() for t in (x, w, b) if t is not None]

    def f(x, w, *b):
        return ft.conv2d(x, w, b[0] if b else None, **kw, algorithm=algorithm)

    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d_matches_torch_float32(case):
    x, w, b, kw, algorithm = conv_args(case, torch.float32, 1, in_ch=8, out_ch=8, hw=(12, 11))
    ours_in = [t.clone().requires_grad_() if t is not None else None for t in (x, w, b)]
    ref_in = [t.clone().requires_grad_() if t is not None else None for t in (x, w, b)]
    y = ft.conv2d(*ours_in, **kw, algorithm=algorithm)
    y_ref = TF.conv2d(*ref_in, **kw)
    if algorithm in WINOGRAD_TOL32:  # Winograd's bound is against the output's scale (conftest)
        assert rel_err(y.detach().numpy(), y_ref.detach().numpy()) <= WINOGRAD_TOL32[algorithm]
    else:
        torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=1e-4)
    grad = torch.randn(y_ref.shape, generator=torch.Generator().manual_seed(2))
    y.backward(grad)
    y_ref.backward(grad)
    for ours, ref in zip(ours_in, ref_in):
        if ours is not None:
            torch.testing.assert_close(ours.grad, ref.grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", MAX_CASES, ids=str)
def test_max_pool2d_gradcheck_float64_and_indices(case):
    kernel, stride, padding, dilation, ceil_mode = case
    x = distinct_input((1, 2, 9, 8), 3).requires_grad_()
    kw = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    assert torch.autograd.gradcheck(lambda x: ft.max_pool2d(x, **kw), [x], eps=1e-6, atol=1e-6)
    y, idx = ft.max_pool2d(x, **kw, return_indices=True)
    y_ref, idx_ref = TF.max_pool2d(x, **kw, return_indices=True)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=0)
    assert idx.dtype == torch.int64 and torch.equal(idx, idx_ref)
    assert not idx.requires_grad


@pytest.mark.parametrize("case", AVG_CASES, ids=str)
def test_avg_pool2d_gradcheck_float64_and_torch(case):
    kernel, stride, padding, ceil_mode, count_include_pad, divisor = case
    x = distinct_input((1, 2, 9, 8), 4).requires_grad_()
    kw = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
              count_include_pad=count_include_pad, divisor_override=divisor)
    assert torch.autograd.gradcheck(lambda x: ft.avg_pool2d(x, **kw), [x], eps=1e-6, atol=1e-6)
    torch.testing.assert_close(ft.avg_pool2d(x, **kw), TF.avg_pool2d(x, **kw), rtol=1e-12, atol=1e-12)


def test_conv2d_computes_only_the_gradients_asked_for(monkeypatch):
    """needs_input_grad is honoured: with a frozen weight, conv2d_weight never runs, and with a
    leaf input that needs no gradient, conv2d_input never runs."""
    from fastconv import functional as F
    called = []
    for name in ("conv2d_input", "conv2d_weight"):
        real = getattr(F, name)
        monkeypatch.setattr(F, name, lambda *a, _real=real, _name=name, **k: called.append(_name) or _real(*a, **k))
    x, w, b, kw, _ = conv_args(CONV_CASES[0], torch.float32, 5)
    ft.conv2d(x.requires_grad_(), w, b, **kw).sum().backward()          # weight and bias frozen
    assert called == ["conv2d_input"] and w.grad is None
    called.clear()
    x = x.detach()
    w.requires_grad_()
    ft.conv2d(x, w, b, **kw).sum().backward()
    assert called == ["conv2d_weight"] and x.grad is None


def test_conv2d_saves_only_what_backward_reads():
    x, w, b, kw, _ = conv_args(CONV_CASES[0], torch.float32, 6)
    y = Conv2dFunction.apply(x, w.requires_grad_(), b, (1, 0, 1, 1), "auto")
    saved_weight, saved_input = y.grad_fn.saved_tensors
    assert saved_weight is None and saved_input is x


@pytest.mark.parametrize("mode", ["no_grad", "inference_mode"])
def test_no_grad_and_inference_mode(mode):
    x, w, b, kw, _ = conv_args(CONV_CASES[1], torch.float32, 7)
    w.requires_grad_()
    with getattr(torch, mode)():
        y = ft.conv2d(x, w, b, **kw)
        p = ft.max_pool2d(y, 2)
        a = ft.avg_pool2d(y, 2)
    assert y.grad_fn is None and not y.requires_grad and p.grad_fn is None and a.grad_fn is None
    torch.testing.assert_close(y, TF.conv2d(x, w.detach(), b, **kw), rtol=1e-5, atol=1e-5)
    if mode == "inference_mode":
        assert y.is_inference()


def test_channels_last_and_non_contiguous_inputs():
    g = torch.Generator().manual_seed(8)
    base = torch.randn(2, 6, 10, 12, generator=g)
    w = torch.randn(5, 6, 3, 3, generator=g).requires_grad_()
    for x in (base.to(memory_format=torch.channels_last), base[:, :, ::2, 1:], base.transpose(2, 3),
              base[..., 2:9]):
        x = x.detach().requires_grad_()
        x_ref = x.detach().clone().requires_grad_()
        w_ref = w.detach().clone().requires_grad_()
        y = ft.conv2d(x, w, padding=1)
        y_ref = TF.conv2d(x_ref, w_ref, padding=1)
        torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
        # grad_output with zero strides (what .sum() sends back) and channels_last
        y.sum().backward()
        y_ref.sum().backward()
        torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(w.grad, w_ref.grad, rtol=1e-4, atol=1e-4)
        w.grad = None
        p = ft.max_pool2d(x, 2)
        torch.testing.assert_close(p, TF.max_pool2d(x_ref, 2), rtol=0, atol=0)
        torch.testing.assert_close(ft.avg_pool2d(x, 3, 1, 1), TF.avg_pool2d(x_ref, 3, 1, 1), rtol=1e-6, atol=1e-6)


def test_channels_last_grad_output():
    x, w, b, kw, _ = conv_args(CONV_CASES[2], torch.float32, 9)
    x.requires_grad_()
    y = ft.conv2d(x, w, b, **kw)
    grad = torch.randn(y.shape, generator=torch.Generator().manual_seed(10)).to(memory_format=torch.channels_last)
    (gx,) = torch.autograd.grad(y, x, grad)
    (gx_ref,) = torch.autograd.grad(TF.conv2d(x, w, b, **kw), x, grad)
    torch.testing.assert_close(gx, gx_ref, rtol=1e-5, atol=1e-5)


def test_unbatched_input():
    g = torch.Generator().manual_seed(11)
    x = torch.randn(2, 7, 7, dtype=torch.float64, generator=g).requires_grad_()
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64, generator=g).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, w: ft.conv2d(x, w, padding=1), [x, w])
    assert torch.autograd.gradcheck(lambda x: ft.avg_pool2d(x, 2), [x])
    y, idx = ft.max_pool2d(x, 3, 2, return_indices=True)
    y_ref, idx_ref = TF.max_pool2d(x, 3, 2, return_indices=True)
    assert y.shape == (2, 3, 3) and torch.equal(y, y_ref) and torch.equal(idx, idx_ref)


def test_no_copies_for_contiguous_tensors(monkeypatch):
    """fastconv reads the tensors' own memory, and the output is fastconv's result array."""
    from fastconv import functional as F
    seen = {}
    real = F.conv2d

    def spy(input, weight, *args, **kwargs):
        seen["args"] = (input.ctypes.data, weight.ctypes.data)
        seen["out"] = real(input, weight, *args, **kwargs)
        return seen["out"]

    monkeypatch.setattr(F, "conv2d", spy)
    x, w, b, kw, _ = conv_args(CONV_CASES[0], torch.float32, 12)
    y = ft.conv2d(x, w.requires_grad_(), b, **kw)
    assert seen["args"] == (x.data_ptr(), w.data_ptr())
    assert y.data_ptr() == seen["out"].ctypes.data


def test_double_backward_raises_instead_of_being_wrong():
    x, w, b, kw, _ = conv_args(CONV_CASES[0], torch.float64, 13)
    x.requires_grad_()
    y = ft.conv2d(x, w, b, **kw)
    (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|double backward|differentiable"):
        gx.sum().backward()


def test_bad_arguments_raise_clear_errors():
    x, w, b, kw, _ = conv_args(CONV_CASES[0], torch.float32, 14)
    with pytest.raises(TypeError, match="input must be a torch.Tensor"):
        ft.conv2d(x.numpy(), w)
    with pytest.raises(TypeError, match="bias must be a torch.Tensor"):
        ft.conv2d(x, w, [0.0] * 4)
    with pytest.raises(TypeError, match="weight has dtype float64"):
        ft.conv2d(x, w.double())
    with pytest.raises(TypeError, match="dtype float32 or float64"):
        ft.conv2d(x.half(), w.half())
    with pytest.raises(ValueError, match="algorithm"):
        ft.conv2d(x, w, algorithm="fft")
    with pytest.raises(ValueError, match="stride"):
        ft.conv2d(x, w, stride=0)
    with pytest.raises(ValueError, match="groups"):
        ft.conv2d(x, w, groups=3)
    with pytest.raises(ValueError, match="padding"):
        ft.max_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match="divisor_override"):
        ft.avg_pool2d(x, 2, divisor_override=0)
