"""The five zoo twins (tests/torch_zoo.py) compiled with the fastconv backend match torch eager
within 1e-4 relative, with random weights and non-trivial BatchNorm statistics, and run with no
node left on torch. Small images keep the suite fast; ResNet-18 and MobileNetV2 also run at 224."""
import pytest

torch = pytest.importorskip("torch")

import torch_zoo  # noqa: E402
from compile_util import assert_matches_eager  # noqa: E402


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


CASES = [("alexnet", 2, 63), ("vgg16", 2, 32), ("resnet18", 2, 64), ("resnet50", 1, 64), ("mobilenet_v2", 2, 64),
         ("resnet18", 1, 224), ("mobilenet_v2", 1, 224)]


@pytest.mark.parametrize("name,batch,size", CASES, ids=[f"{n}-{b}x{s}" for n, b, s in CASES])
def test_zoo_twin_compiled_matches_eager(name, batch, size):
    model = torch_zoo.randomize_batchnorm(torch_zoo.build(name, num_classes=100), seed=1).eval()
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(2))
    compiled = assert_matches_eager(model, x)
    decisions = compiled.decisions()
    assert not [d for d in decisions if d.runs_on == "torch"], [d for d in decisions if d.runs_on == "torch"]
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert sum("batch_norm" in d.op and d.runs_on == "fused" for d in decisions) == n_bn  # every BN folded
