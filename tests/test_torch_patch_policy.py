"""patch() swaps only what fastconv runs faster: by rule without an example input, by measurement
with one; patch_plan() says what and why; force=True swaps everything fastconv can run."""
import copy

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import fastconv.torch as ft  # noqa: E402


def mixed_net():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),                # 0: 3x3 stride 1 -> fastconv (Winograd)
        nn.MaxPool2d(2),                              # 1: pooling -> fastconv
        nn.Conv2d(8, 8, 1),                           # 2: 1x1 -> torch
        nn.Conv2d(8, 8, 3, stride=2, padding=1),      # 3: strided -> torch
        nn.Conv2d(8, 8, 3, padding=1, groups=8),      # 4: depthwise -> fastconv
        nn.Conv2d(8, 8, 5, padding=2),                # 5: 5x5 -> torch
        nn.AvgPool2d(2),                              # 6: pooling -> fastconv
        nn.Conv2d(8, 8, 3, padding=2, dilation=2),    # 7: dilated -> torch
    )


def test_rule_swaps_winograd_convs_and_pools_only():
    model = mixed_net()
    reference = copy.deepcopy(model)
    decisions = {d.name: d for d in ft.patch_plan(model)}
    assert all(type(m).__module__.startswith("torch.") for m in model)  # patch_plan changes nothing
    swapped = {name for name, d in decisions.items() if d.swapped}
    assert swapped == {"0", "1", "4", "6"}
    assert "Winograd" in decisions["0"].reason and "pooling" in decisions["1"].reason
    assert "depthwise" in decisions["4"].reason
    for name, word in (("2", "1x1"), ("3", "stride-2"), ("5", "5x5"), ("7", "dilated")):
        assert word in decisions[name].reason and "torch" in decisions[name].reason, decisions[name]
    assert ft.patch(model) is model
    assert [type(m) for m in model] == [ft.Conv2d, ft.MaxPool2d, nn.Conv2d, nn.Conv2d, ft.Conv2d, nn.Conv2d,
                                        ft.AvgPool2d, nn.Conv2d]
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(model(x), reference(x), rtol=1e-4, atol=1e-5)


def test_force_swaps_everything_fastconv_can_run():
    model = ft.patch(mixed_net(), force=True)
    assert all(type(m).__module__ == "fastconv.torch.modules" for m in model)
    assert all(d.swapped and d.reason in ("force=True", "already patched") for d in ft.patch_plan(model, force=True))


def test_measurement_decides_per_module_and_verbose_prints(capsys):
    model = mixed_net()
    x = torch.randn(1, 3, 16, 16)
    ft.patch(model, example_input=x, verbose=True)
    printed = capsys.readouterr().out
    assert printed.startswith("fastconv.torch.patch:")
    lines = printed.splitlines()[1:]
    assert len(lines) == 8
    for line, module in zip(lines, model):
        assert "measured" in line and "ms" in line and "at input" in line, line
        # swapped exactly where the measurement said fastconv was faster
        assert line.strip().startswith("swapped") == (type(module).__module__ == "fastconv.torch.modules"), line
        assert ("measured faster" in line) == line.strip().startswith("swapped"), line


def test_modules_the_example_does_not_reach_use_the_rule():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.used = nn.Conv2d(3, 3, 1)
            self.unused = nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x):
            return self.used(x)

    decisions = {d.name: d for d in ft.patch_plan(Branchy(), example_input=torch.randn(1, 3, 6, 6))}
    assert "measured" in decisions["used"].reason
    assert decisions["unused"].swapped and "not reached by example_input" in decisions["unused"].reason


def test_unsupported_modules_are_listed_with_their_reason():
    model = nn.Sequential(nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"))
    (decision,) = ft.patch_plan(model, force=True)
    assert not decision.swapped and "padding_mode='reflect'" in decision.reason
    with pytest.warns(UserWarning, match="left these modules on PyTorch"):
        ft.patch(model, force=True)
    assert type(model[0]) is nn.Conv2d
