"""fastconv.torch's modules and patch(): torch.nn's constructor arguments, initialisation,
state_dict keys and behaviour; patching in place with one warning for what stays on torch;
state_dict round trips; dtypes fastconv has no kernels for; torch.compile."""
import copy
import subprocess
import sys
import warnings

import pytest
from children import child_kwargs

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import fastconv.torch as ft  # noqa: E402

CONV_ARGS = [((3, 8, 3), {}), ((4, 6, (3, 2)), dict(stride=2, padding=(1, 0), dilation=(1, 2), groups=2, bias=False)),
             ((4, 4, 5), dict(padding="same")), ((2, 4, 3), dict(padding="valid"))]


def small_net():
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
                         nn.Conv2d(4, 6, 3, stride=2, groups=2), nn.AvgPool2d(2, count_include_pad=False, padding=1),
                         nn.Flatten(), nn.Linear(24, 3))


def batch(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("args,kw", CONV_ARGS)
def test_conv2d_module_is_torch_conv2d_with_algorithm(args, kw):
    torch.manual_seed(0)
    theirs = nn.Conv2d(*args, **kw)
    torch.manual_seed(0)
    ours = ft.Conv2d(*args, **kw, algorithm="direct")
    assert isinstance(ours, nn.Conv2d) and ours.algorithm == "direct"
    assert "algorithm='direct'" in repr(ours)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for k, v in theirs.state_dict().items():  # same initialisation from the same seed
        assert torch.equal(ours.state_dict()[k], v)
    x = batch((2, args[0], 9, 10), 1)
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)


def test_pool_modules_match_torch():
    x = batch((2, 3, 9, 10), 2)
    for ours, theirs in ((ft.MaxPool2d(3, 2, 1, dilation=1, ceil_mode=True), nn.MaxPool2d(3, 2, 1, ceil_mode=True)),
                         (ft.AvgPool2d(3, 2, 1, True, False, None), nn.AvgPool2d(3, 2, 1, True, False, None)),
                         (ft.AvgPool2d(2, divisor_override=3), nn.AvgPool2d(2, divisor_override=3))):
        assert repr(ours) == repr(theirs) and ours.state_dict() == {}
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-6, atol=1e-6)
    y, idx = ft.MaxPool2d(2, return_indices=True)(x)
    y_ref, idx_ref = nn.MaxPool2d(2, return_indices=True)(x)
    assert torch.equal(y, y_ref) and torch.equal(idx, idx_ref)
    # the indices work with torch's own max_unpool2d, as torch's do
    assert torch.equal(nn.MaxUnpool2d(2)(y, idx), nn.MaxUnpool2d(2)(y_ref, idx_ref))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("rows", [1, 5, 8, 9])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_module_matches_torch_forward_and_gradients(dtype, rows, bias):
    """1-8 rows run fastconv's few-rows kernels (forward; input and weight gradients in one pass
    over the weights), 9 rows torch's own forward; both give torch's results and gradients."""
    torch.manual_seed(rows)
    ref = nn.Linear(37, 23, bias=bias).to(dtype)
    ours = ft.Linear(37, 23, bias=bias).to(dtype)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(rows, 37, dtype=dtype, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    y, y2 = ref(x), ours(x2)
    g = torch.randn_like(y)
    y.backward(g)
    y2.backward(g)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(y2, y, **tol)
    torch.testing.assert_close(x2.grad, x.grad, **tol)
    for a, b in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(a.grad, b.grad, **tol)
    with torch.no_grad():  # no graph: the kernels directly
        torch.testing.assert_close(ours(x2), ref(x), **tol)


def test_linear_module_runs_fastconv_only_where_it_applies(monkeypatch):
    from fastconv import _cpu
    calls = []
    real = _cpu.linear
    monkeypatch.setattr(_cpu, "linear", lambda *a: calls.append(a[0].shape) or real(*a))
    layer = ft.Linear(6, 4)
    layer(torch.randn(8, 6))                      # few rows: fastconv
    layer(torch.randn(9, 6))                      # more rows: torch
    layer(torch.randn(2, 3, 6))                   # 3-D input: torch
    layer(torch.randn(6, 8).t())                  # not contiguous: torch
    layer.to(torch.float16)(torch.randn(2, 6, dtype=torch.float16))  # float16: torch
    assert calls == [(8, 6)]


def test_conv2d_module_rejects_what_it_cannot_run():
    with pytest.raises(ValueError, match="padding_mode must be 'zeros'"):
        ft.Conv2d(3, 4, 3, padding=1, padding_mode="reflect")
    with pytest.raises(ValueError, match="algorithm must be one of"):
        ft.Conv2d(3, 4, 3, algorithm="fft")


def test_patch_converts_in_place_and_keeps_parameters_hooks_and_results():
    torch.manual_seed(3)
    model = small_net()
    reference = copy.deepcopy(model)
    params = list(model.parameters())
    seen = []
    model[0].register_forward_hook(lambda m, i, o: seen.append(o.shape))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # everything is supported: no warning
        assert ft.patch(model, algorithm="winograd_f2", force=True) is model
    assert [type(m) for m in model] == [ft.Conv2d, nn.ReLU, ft.MaxPool2d, ft.Conv2d, ft.AvgPool2d, nn.Flatten, ft.Linear]
    # Winograd where it can run (3x3 stride 1), "auto" on the strided conv
    assert model[0].algorithm == "winograd_f2" and model[3].algorithm == "auto"
    assert all(a is b for a, b in zip(model.parameters(), params))
    x = batch((3, 2, 12, 12), 4)
    torch.testing.assert_close(model(x), reference(x), rtol=1e-5, atol=1e-5)
    assert seen == [(3, 4, 12, 12)]
    ft.patch(model, algorithm="direct", force=True)  # patching again changes the algorithm
    assert model[0].algorithm == "direct"


def test_patch_warns_once_listing_what_stays_on_torch():
    class MyConv(nn.Conv2d):
        pass

    model = nn.Sequential(nn.Conv2d(2, 2, 3, padding=1, padding_mode="circular"), MyConv(2, 2, 1),
                          nn.Sequential(nn.Conv2d(2, 2, 1), nn.MaxPool2d(2)))
    with pytest.warns(UserWarning) as record:
        ft.patch(model, force=True)
    assert len(record) == 1
    message = str(record[0].message)
    assert "0: padding_mode='circular'" in message and "1: MyConv subclasses torch.nn.Conv2d" in message
    assert type(model[0]) is nn.Conv2d and type(model[1]) is MyConv
    assert type(model[2][0]) is ft.Conv2d and type(model[2][1]) is ft.MaxPool2d


def test_patch_bad_arguments():
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        ft.patch(lambda x: x)
    with pytest.raises(ValueError, match="algorithm must be one of"):
        ft.patch(nn.Conv2d(1, 1, 1), algorithm="fast")
    conv = nn.Conv2d(1, 2, 3)
    assert type(ft.patch(conv)) is ft.Conv2d  # the model itself may be a conv


def test_state_dict_round_trips_between_patched_and_unpatched():
    torch.manual_seed(5)
    unpatched = small_net()
    torch.manual_seed(6)
    patched = ft.patch(small_net(), force=True)
    patched.load_state_dict(unpatched.state_dict(), strict=True)
    x = batch((2, 2, 12, 12), 7)
    torch.testing.assert_close(patched(x), unpatched(x), rtol=1e-5, atol=1e-5)
    back = small_net()
    back.load_state_dict(patched.state_dict(), strict=True)
    for k, v in unpatched.state_dict().items():
        assert torch.equal(back.state_dict()[k], v)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_patched_model_runs_other_dtypes(dtype):
    """float64 runs fastconv's kernels; bfloat16 (no fastconv kernels) runs torch's forward."""
    torch.manual_seed(8)
    reference = small_net().to(dtype)
    patched = ft.patch(copy.deepcopy(reference), force=True)
    x = batch((2, 2, 12, 12), 9).to(dtype)
    tol = 1e-12 if dtype == torch.float64 else 0
    torch.testing.assert_close(patched(x), reference(x), rtol=tol, atol=tol)


def test_torch_compile_runs_patched_model():
    """torch.compile traces around fastconv's ops (graph breaks) and gives the same results and
    gradients. The aot_eager backend runs dynamo and AOTAutograd without compiling C++ (which
    takes a minute here); the slow test below uses the default inductor backend."""
    check_compiled(backend="aot_eager")


@pytest.mark.slow
def test_torch_compile_inductor_runs_patched_model():
    check_compiled(backend="inductor")


def check_compiled(backend):
    torch.manual_seed(10)
    reference = small_net()
    patched = ft.patch(copy.deepcopy(reference), force=True)
    compiled = torch.compile(patched, backend=backend)
    x = batch((2, 2, 12, 12), 11)
    y, y_ref = compiled(x), reference(x)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    y.square().sum().backward()
    y_ref.square().sum().backward()
    for (name, p), p_ref in zip(patched.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, p_ref.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_import_without_torch_raises_a_clear_import_error():
    """fastconv works without torch; only fastconv.torch needs it, and says how to get it."""
    code = ("import sys; sys.modules['torch'] = None\n"
            "import fastconv, fastconv.functional\n"
            "try:\n    import fastconv.torch\nexcept ImportError as e:\n    print('ImportError:', e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, **child_kwargs())
    assert 'ImportError: fastconv.torch needs PyTorch' in out.stdout and 'fastconv[torch]' in out.stdout
