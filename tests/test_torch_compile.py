"""torch.compile(model, backend="fastconv") on small graphs: every lowering, fusion and fallback
rule against torch eager (1e-4 relative), memory planning across shapes, in-place weight
updates, the gradient path, threads, explain(), and the entry-point registration."""
import os
import subprocess
import sys
import re
import threading
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import fastconv.torch as ft  # noqa: E402
from children import child_kwargs  # noqa: E402
from compile_util import Compiled, assert_matches_eager, rel_err  # noqa: E402
from torch_zoo import randomize_batchnorm  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def dynamo_entry_points():
    """{name: "module:function"} of pyproject.toml's torch_dynamo_backends entry points."""
    text = (REPO / "pyproject.toml").read_text()
    section = re.search(r"^\[project\.entry-points\.torch_dynamo_backends\]\n((?:[^\[\n].*\n|\n)*)", text, re.M)
    assert section, "pyproject.toml declares no torch_dynamo_backends entry point"
    return dict(re.findall(r'^(\w+)\s*=\s*"([^"]+)"', section.group(1), re.M))


@pytest.fixture(autouse=True)
def fresh_dynamo():
    """Dynamo caches per code object; each test compiles its own models from scratch."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def inputs(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def by_node(compiled):
    return {d.node: d for d in compiled.decisions()}


def runs_on(compiled, op_contains):
    return [d.runs_on for d in compiled.decisions() if op_contains in d.op]


class ConvBnRelu(nn.Module):
    def __init__(self, cin=3, cout=8, act=None, bias=False):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=bias)
        self.bn = nn.BatchNorm2d(cout)
        self.act = act or nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


@pytest.mark.parametrize("act", [nn.ReLU(inplace=True), nn.ReLU6(), nn.Hardtanh(-0.3, 0.4), nn.SiLU(), nn.Identity()])
@pytest.mark.parametrize("bias", [False, True])
def test_conv_bn_activation_fuses_into_one_step(act, bias):
    model = randomize_batchnorm(ConvBnRelu(act=act, bias=bias)).eval()
    compiled = assert_matches_eager(model, inputs(2, 3, 9, 11))
    decisions = compiled.decisions()
    assert [d.runs_on for d in decisions].count("fastconv") == 1, decisions  # one step for the whole chain
    assert all(d.runs_on in ("fastconv", "fused") for d in decisions)
    assert "batch_norm folded" in decisions[0].detail


class ResidualBlock(nn.Module):
    """conv -> BN -> add -> ReLU (ResNet's block end), with the shortcut computed after the conv."""

    def __init__(self, c=6, downsample=True):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.down = nn.Sequential(nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c)) if downsample else nn.Identity()

    def forward(self, x):
        out = self.bn(self.conv(x))
        out += self.down(x)
        return torch.relu(out)


@pytest.mark.parametrize("downsample", [True, False])
def test_conv_bn_add_relu_fuses_the_residual(downsample):
    model = randomize_batchnorm(ResidualBlock(downsample=downsample)).eval()
    compiled = assert_matches_eager(model, inputs(2, 6, 10, 10))
    first = compiled.decisions()[0]
    assert "residual add" in first.detail and "relu" in first.detail, first
    assert runs_on(compiled, "iadd") == ["fused"]


def test_activation_then_residual_keeps_the_order():
    class PostActAdd(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            return nn.functional.relu6(self.conv(x)) + x

    compiled = assert_matches_eager(PostActAdd().eval(), inputs(1, 4, 7, 7) * 5)
    assert "hardtanh + residual add" in compiled.decisions()[0].detail or "relu6 + residual add" in \
        compiled.decisions()[0].detail


def test_batch_norm_without_a_conv_before_it_is_a_scale_and_shift():
    model = randomize_batchnorm(nn.Sequential(nn.BatchNorm2d(5), nn.ReLU(), nn.Conv2d(5, 3, 1))).eval()
    compiled = assert_matches_eager(model, inputs(3, 5, 6, 6))
    bn = [d for d in compiled.decisions() if "batch_norm" in d.op][0]
    assert bn.runs_on == "fastconv" and "scale + shift" in bn.detail
    assert runs_on(compiled, "relu") == ["fused"]


class NoKernel(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        return torch.sigmoid(y[:, :2]), y.mean(dim=(2, 3))


def test_ops_without_a_kernel_fall_back_to_torch_and_explain_names_them(capsys):
    model = NoKernel().eval()
    x = inputs(2, 3, 8, 8)
    assert_matches_eager(model, x)
    explanation = ft.explain(model, x)
    printed = capsys.readouterr().out
    fallbacks = {d.op: d.detail for d in explanation.fallbacks}
    assert set(fallbacks) == {"operator.getitem", "torch.sigmoid", "Tensor.mean"}, fallbacks
    assert all("no fastconv kernel" in reason for reason in fallbacks.values())
    for op in fallbacks:
        assert op in printed
    assert explanation.counts()["fastconv"] == 1


class TwoInTwoOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(2, 4, 1)
        self.head = nn.Linear(8, 5)

    def forward(self, x, y):
        h = torch.relu(self.a(x)) + self.b(y)
        p = nn.functional.adaptive_avg_pool2d(torch.cat([h, nn.functional.max_pool2d(h, 1)], 1), 1)
        return h, torch.relu(self.head(torch.flatten(p, 1)))


def test_two_inputs_and_two_outputs():
    compiled = assert_matches_eager(TwoInTwoOut().eval(), inputs(2, 3, 8, 8), inputs(2, 2, 8, 8, seed=1))
    assert not [d for d in compiled.decisions() if d.runs_on == "torch"]


def test_batch_size_changes_between_calls_and_outputs_stay_the_callers():
    torch.manual_seed(0)
    model = randomize_batchnorm(nn.Sequential(ConvBnRelu(3, 8), nn.MaxPool2d(2), ResidualBlock(8, downsample=False),
                                              nn.AvgPool2d(2), nn.Flatten(), nn.Linear(8 * 2 * 2, 3))).eval()
    compiled = Compiled(model)
    kept = []
    with torch.no_grad():
        for k, n in enumerate((1, 3, 2, 3, 1, 3)):
            x = inputs(n, 3, 8, 8, seed=k)
            y = compiled(x)
            assert rel_err(y, model(x)) <= 1e-4, n
            kept.append((y, y.clone()))
    for y, copy in kept:  # later calls (reusing planned buffers) never wrote into an earlier result
        assert torch.equal(y, copy)
    assert compiled.lowered


class Head(nn.Module):
    def __init__(self, cin, cout, act):
        super().__init__()
        self.fc = nn.Linear(cin, cout)
        self.act = act

    def forward(self, x):
        y = self.fc(x)
        return y if self.act is None else self.act(y)


@pytest.mark.parametrize("act", [None, nn.ReLU()], ids=["plain", "relu"])
@pytest.mark.parametrize("features, rows, streams", [(64, 3, True), (1024, 8, True), (64, 9, False),
                                                    (1024, 16, False)],
                         ids=["small", "few-rows-big-weight", "many-rows-small", "many-rows"])
def test_linear_never_calls_numpys_blas(monkeypatch, act, features, rows, streams):
    """Issue 22: fastconv's linear hands all but its own few-rows case (1-8 rows) to numpy's BLAS,
    whose idle worker threads spin beside torch's OpenMP team (ResNet-18's head cost 0.53x eager).
    The compiled step calls it only for the few-rows case; torch's GEMM runs the rest."""
    from fastconv import _cpu, _plans
    calls = []
    real = _cpu.linear

    def spy(x, w, b):
        calls.append(_cpu.few_rows_linear(x, w, b))
        return real(x, w, b)

    monkeypatch.setattr(_cpu, "linear", spy)
    _plans.clear()  # a remembered plan would call the unpatched function
    torch.manual_seed(0)
    model = Head(features, features, act).eval()
    assert_matches_eager(model, inputs(rows, features))
    assert calls == ([True] * 3 if streams else [])  # one per call of assert_matches_eager's three


def test_in_place_weight_updates_are_seen():
    model = randomize_batchnorm(ConvBnRelu(3, 4)).eval()
    compiled = Compiled(model)
    x = inputs(1, 3, 6, 6)
    with torch.no_grad():
        compiled(x)
        model.conv.weight.mul_(-2)
        model.bn.running_var.add_(3)
        assert rel_err(compiled(x), model(x)) <= 1e-4
        model.load_state_dict({k: v * 1.5 if v.is_floating_point() else v for k, v in model.state_dict().items()})
        assert rel_err(compiled(x), model(x)) <= 1e-4


def test_replayed_calls_see_new_storage_and_other_layouts():
    """A conv step replays its last validated call (steps.Conv._replay) only while the weights are
    the same tensors with the same storage and version, and the input has the same shape and is
    contiguous: a parameter given new storage (.data =), a channels-last input of the same shape,
    and a new batch size each take the full path and give eager's results."""
    model = randomize_batchnorm(nn.Sequential(ConvBnRelu(3, 8), ResidualBlock(8, downsample=False))).eval()
    compiled = Compiled(model)
    x = inputs(2, 3, 9, 9)
    with torch.no_grad():
        for _ in range(3):
            assert rel_err(compiled(x), model(x)) <= 1e-4
        model[0].conv.weight.data = torch.randn_like(model[0].conv.weight)
        assert rel_err(compiled(x), model(x)) <= 1e-4
        assert rel_err(compiled(x.to(memory_format=torch.channels_last)), model(x)) <= 1e-4
        assert rel_err(compiled(x[:1]), model(x[:1])) <= 1e-4
        assert rel_err(compiled(x), model(x)) <= 1e-4


def test_prepacked_conv_weights_follow_weight_updates(monkeypatch):
    """A conv step on the direct kernel packs its folded weights once (steps.Conv._packed_weights)
    and packs again whenever the parameters change, never reading stale panels."""
    from fastconv import _cpu
    packs = []
    real = _cpu.pack_forward_weights
    monkeypatch.setattr(_cpu, "pack_forward_weights", lambda *a: packs.append(a[1].copy()) or real(*a))
    model = randomize_batchnorm(nn.Sequential(nn.Conv2d(16, 24, 1), nn.BatchNorm2d(24), nn.ReLU(),
                                              nn.Conv2d(24, 32, 3, stride=2, padding=1))).eval()
    compiled = Compiled(model)
    x = inputs(2, 16, 9, 9)
    with torch.no_grad():
        for _ in range(4):
            assert rel_err(compiled(x), model(x)) <= 1e-4
        assert len(packs) == 2, "each conv step packs its weights once, on its first kernel call"
        model[0].weight.mul_(-2)
        model[1].running_var.add_(3)
        model[3].weight.add_(1)
        for _ in range(2):
            assert rel_err(compiled(x), model(x)) <= 1e-4
        assert len(packs) == 4
        folded = model[0].weight[:, :, 0, 0] * (model[1].weight / (model[1].running_var + model[1].eps).sqrt())[:, None]
        assert any(torch.allclose(torch.from_numpy(p)[:, :, 0, 0], folded) for p in packs[2:])


def test_channels_last_float64_and_dilated_strided_grouped_convs():
    model = nn.Sequential(nn.Conv2d(4, 8, 3, stride=2, padding=2, dilation=2, groups=2), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, padding="same", groups=8), nn.Hardtanh()).double().eval()
    x = inputs(2, 4, 11, 13).double().to(memory_format=torch.channels_last)
    compiled = assert_matches_eager(model, x, tol=1e-10)
    assert all(d.runs_on != "torch" for d in compiled.decisions())


def test_gradients_and_training_mode_run_on_torch():
    model = randomize_batchnorm(nn.Sequential(ConvBnRelu(3, 4), nn.Dropout(0.5))).train()
    compiled = Compiled(model)
    x = inputs(2, 3, 6, 6)
    torch.manual_seed(1)
    y = compiled(x)
    y.sum().backward()  # autograd works: the graph ran on torch
    assert model[0].conv.weight.grad is not None
    assert compiled.graphs and not compiled.lowered
    assert all(d.runs_on == "torch" and "gradients are needed" in d.detail for d in compiled.decisions())


def test_training_mode_batch_norm_without_grad_falls_back_and_updates_statistics():
    model = ConvBnRelu(3, 4).train()
    reference = ConvBnRelu(3, 4).train()
    reference.load_state_dict(model.state_dict())
    x = inputs(4, 3, 6, 6)
    compiled = Compiled(model)
    with torch.no_grad():
        assert rel_err(compiled(x), reference(x)) <= 1e-4
    torch.testing.assert_close(model.bn.running_mean, reference.bn.running_mean)
    bn = [d for d in compiled.decisions() if "batch_norm" in d.op][0]
    assert bn.runs_on == "torch" and "training mode" in bn.detail


def test_in_place_op_on_a_graph_input_stays_on_torch():
    class MutatesInput(nn.Module):
        def forward(self, x):
            x.relu_()
            return x * 2

    x = inputs(2, 3, 4, 4)
    want = MutatesInput()(x.clone())
    compiled = Compiled(MutatesInput())
    with torch.no_grad():
        got = compiled(x)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(x, want / 2)  # the input was written, as torch does


def test_four_threads_get_the_serial_results():
    torch.manual_seed(2)
    model = randomize_batchnorm(nn.Sequential(ConvBnRelu(3, 16), ResidualBlock(16), nn.AdaptiveAvgPool2d(2),
                                              nn.Flatten(), nn.Linear(64, 10))).eval()
    compiled = Compiled(model)
    xs = [inputs(1 + k % 3, 3, 12, 12, seed=k) for k in range(12)]
    with torch.no_grad():
        serial = [compiled(x) for x in xs]
        results, errors = {}, []

        def work(t):
            try:
                with torch.no_grad():
                    for _ in range(3):
                        for k in range(t, len(xs), 4):
                            results.setdefault(k, []).append(compiled(xs[k]))
            except Exception as e:  # reported below, with the thread
                errors.append((t, e))

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors
    for k, ys in results.items():
        for y in ys:
            assert torch.equal(y, serial[k]), k


def test_cat_heavy_net():
    """DenseNet-style: each layer's BN-ReLU-conv output is concatenated onto its input."""
    class Dense(nn.Module):
        def __init__(self, c, growth=4, layers=3):
            super().__init__()
            self.layers = nn.ModuleList(
                nn.Sequential(nn.BatchNorm2d(c + k * growth), nn.ReLU(inplace=True),
                              nn.Conv2d(c + k * growth, growth, 3, padding=1, bias=False)) for k in range(layers))

        def forward(self, x):
            for layer in self.layers:
                x = torch.cat([x, layer(x)], 1)
            return nn.functional.avg_pool2d(x, 2)

    model = randomize_batchnorm(Dense(5)).eval()
    compiled = assert_matches_eager(model, inputs(2, 5, 8, 8))
    assert runs_on(compiled, "cat") == ["fastconv"] * 3


def test_pre_activation_residual_net():
    class PreAct(nn.Module):
        def __init__(self, c=6):
            super().__init__()
            self.bn1, self.conv1 = nn.BatchNorm2d(c), nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn2, self.conv2 = nn.BatchNorm2d(c), nn.Conv2d(c, c, 3, padding=1, bias=False)

        def forward(self, x):
            out = self.conv1(torch.relu(self.bn1(x)))
            out = self.conv2(torch.relu(self.bn2(out)))
            return out + x

    model = randomize_batchnorm(PreAct()).eval()
    compiled = assert_matches_eager(model, inputs(2, 6, 9, 9))
    assert all(d.runs_on != "torch" for d in compiled.decisions())


def test_grouped_net_with_channel_shuffle():
    class Shuffle(nn.Module):
        def __init__(self, c=8, groups=4):
            super().__init__()
            self.groups = groups
            self.conv1 = nn.Conv2d(c, c, 1, groups=groups, bias=False)
            self.bn1 = nn.BatchNorm2d(c)
            self.dw = nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False)
            self.bn2 = nn.BatchNorm2d(c)

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            n, c, h, w = y.shape
            y = y.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)
            return torch.relu(self.bn2(self.dw(y)) + x)

    model = randomize_batchnorm(Shuffle()).eval()
    compiled = assert_matches_eager(model, inputs(2, 8, 7, 7))
    assert "residual add" in [d for d in compiled.decisions() if d.runs_on == "fastconv"][-1].detail


def test_registered_under_the_torch_dynamo_backends_entry_point():
    target = dynamo_entry_points()["fastconv"]
    module, name = target.split(":")
    import importlib
    assert getattr(importlib.import_module(module), name) is ft.compile_backend
    torch._dynamo.register_backend(ft.compile_backend, name="fastconv_test")
    try:
        model = ConvBnRelu().eval()
        x = inputs(1, 3, 5, 5)
        with torch.no_grad():
            assert rel_err(torch.compile(model, backend="fastconv_test")(x), model(x)) <= 1e-4
    finally:
        torch._dynamo.backends.registry._BACKENDS.pop("fastconv_test", None)
        torch._dynamo.backends.registry._COMPILER_FNS.pop("fastconv_test", None)


DISCOVERY_CHECK = """
import sys, torch
model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
x = torch.randn(1, 3, 6, 6)
with torch.no_grad():
    y = torch.compile(model, backend="fastconv")(x)
assert "fastconv" in sys.modules, "the backend ran without loading fastconv?"
assert torch.allclose(y, model(x), rtol=1e-4, atol=1e-5)
print("ok")
"""


def test_backend_name_is_discovered_through_the_entry_point(tmp_path):
    """An installed fastconv exposes the entry point through its dist-info; this writes the one
    pyproject.toml declares into a scratch dist-info and lets torch find "fastconv" by name,
    in a fresh process that never imports fastconv itself."""
    entry = dynamo_entry_points()
    info = tmp_path / "fastconv_entry_point_check-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fastconv-entry-point-check\nVersion: 0\n")
    (info / "entry_points.txt").write_text("[torch_dynamo_backends]\n" + "".join(f"{k} = {v}\n" for k, v in entry.items()))
    kw = child_kwargs()  # imports the fastconv these tests imported (the checkout's, or the installed one)
    kw["env"]["PYTHONPATH"] = os.pathsep.join([str(tmp_path), kw["env"]["PYTHONPATH"]])
    done = subprocess.run([sys.executable, "-c", DISCOVERY_CHECK], capture_output=True, timeout=300, **kw)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


def test_weights_computed_inside_the_graph_are_never_stale():
    """A weight made in forward is a new tensor each call (maybe at a reused address, version 0):
    the plan must not keep what it derived from the previous one."""
    class Standardised(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)

        def forward(self, x, gain):
            w = self.conv.weight * gain
            return self.bn(nn.functional.conv2d(x, w, self.conv.bias, padding=1))

    model = randomize_batchnorm(Standardised()).eval()
    compiled = Compiled(model)
    x = inputs(1, 3, 5, 5)
    with torch.no_grad():
        for g in (1.0, -2.0, 0.5, 3.0, -1.0, 2.0):
            gain = torch.tensor(g)
            assert rel_err(compiled(x, gain), model(x, gain)) <= 1e-4, g
    assert compiled.lowered


def test_explain_reports_each_graph_of_a_broken_model(capsys):
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3)

        def forward(self, x):
            x = torch.relu(self.a(x))
            torch._dynamo.graph_break()
            return self.b(x)

    explanation = ft.explain(Broken().eval(), inputs(1, 3, 9, 9))
    assert len(explanation.graphs) == 2
    assert "graph 1:" in capsys.readouterr().out
