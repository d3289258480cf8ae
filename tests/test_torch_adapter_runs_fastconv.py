"""fastconv.torch runs fastconv's kernels, not torch's. The parity tests elsewhere would pass if
a module fell back to torch's forward (which gives torch's answer exactly), so here every adapter
module and a patched float32 model are run, forward and backward, with two witnesses: counters on
fastconv.functional's ops (the kernels' one door) and on torch.nn.functional's (which must stay at
zero), and the autograd graph's node types (fastconv's Functions, none of torch's)."""
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import fastconv.torch as ft  # noqa: E402
import torch_zoo  # noqa: E402
from test_torch_adapter_modules import small_net  # noqa: E402

# autograd nodes: fastconv's Functions, and what torch's own modules record instead
OURS = {"Conv2dFunctionBackward", "MaxPool2dFunctionBackward", "AvgPool2dFunctionBackward"}
THEIRS = {"ConvolutionBackward0", "MaxPool2DWithIndicesBackward0", "AvgPool2DBackward0"}


def node_types(output):
    """The class names of every node in output's autograd graph."""
    seen, todo, names = set(), [output.grad_fn], set()
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        todo.extend(next_node for next_node, _ in node.next_functions)
    return names


def batch(shape, dtype, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


CONV_GRADS = {"conv2d_input": 1, "conv2d_weight": 1}
# (module, its forward op, the backward ops it runs when the input and the parameters need gradients)
MODULES = [
    pytest.param(lambda: ft.Conv2d(4, 4, 3, padding=1), "conv2d", CONV_GRADS, id="conv3x3"),
    pytest.param(lambda: ft.Conv2d(4, 4, 3, padding=1, algorithm="winograd"), "conv2d", CONV_GRADS, id="winograd"),
    pytest.param(lambda: ft.Conv2d(4, 6, (3, 2), stride=2, groups=2, bias=False), "conv2d", CONV_GRADS,
                 id="conv3x2-stride2-groups2"),
    pytest.param(lambda: ft.MaxPool2d(2), "max_pool2d", {"max_pool2d_backward": 1}, id="maxpool2"),
    pytest.param(lambda: ft.MaxPool2d(3, 2, 1, ceil_mode=True, return_indices=True), "max_pool2d",
                 {"max_pool2d_backward": 1}, id="maxpool3-indices"),
    pytest.param(lambda: ft.AvgPool2d(2), "avg_pool2d", {"avg_pool2d_backward": 1}, id="avgpool2"),
    pytest.param(lambda: ft.AvgPool2d(3, 2, 1, count_include_pad=False, divisor_override=None), "avg_pool2d",
                 {"avg_pool2d_backward": 1}, id="avgpool3-exclude-pad"),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("make,forward_op,backward_ops", MODULES)
def test_every_module_runs_fastconv_forward_and_backward(make, forward_op, backward_ops, dtype, adapter_calls):
    module = make().to(dtype)
    x = batch((2, 4, 9, 8), dtype, 1).requires_grad_()
    out = module(x)
    y = out[0] if isinstance(out, tuple) else out
    assert adapter_calls["fastconv"] == {forward_op: 1} and not adapter_calls["torch"]
    nodes = node_types(y)
    assert nodes & OURS and not nodes & THEIRS, nodes
    y.square().sum().backward()
    assert adapter_calls["fastconv"] == {forward_op: 1, **backward_ops} and not adapter_calls["torch"]
    assert x.grad is not None and all(p.grad is not None for p in module.parameters())
    adapter_calls["fastconv"].clear()
    with torch.no_grad():  # the no-graph fast path runs the same kernels
        module(x)
    assert adapter_calls["fastconv"] == {forward_op: 1} and not adapter_calls["torch"]


@pytest.mark.parametrize("make,shape", [
    pytest.param(small_net, (3, 2, 12, 12), id="small"),
    pytest.param(lambda: torch_zoo.build("resnet18", num_classes=10, seed=0), (2, 3, 32, 32), id="resnet18"),
])
def test_patched_float32_model_runs_every_layer_on_fastconv(make, shape, adapter_calls):
    """Each conv and pooling layer runs fastconv once forward; backward computes every conv's
    weight gradient, every input gradient but the first layer's (the image needs none), and each
    pooling layer's gradient, all on fastconv. Nothing reaches torch's conv or pooling."""
    torch.manual_seed(1)
    model = ft.patch(make(), force=True)  # every supported layer, whatever patch()'s cost rule says
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    max_pools = [m for m in model.modules() if isinstance(m, nn.MaxPool2d)]
    avg_pools = [m for m in model.modules() if isinstance(m, nn.AvgPool2d)]
    assert convs and max_pools
    y = model(batch(shape, torch.float32, 2))
    assert adapter_calls["fastconv"] == {"conv2d": len(convs), "max_pool2d": len(max_pools),
                                 **({"avg_pool2d": len(avg_pools)} if avg_pools else {})}
    assert not adapter_calls["torch"]
    nodes = node_types(y)
    assert {"Conv2dFunctionBackward", "MaxPool2dFunctionBackward"} <= nodes and not nodes & THEIRS, nodes
    adapter_calls["fastconv"].clear()
    y.logsumexp(1).sum().backward()
    assert adapter_calls["fastconv"] == {"conv2d_weight": len(convs), "conv2d_input": len(convs) - 1,
                                 "max_pool2d_backward": len(max_pools),
                                 **({"avg_pool2d_backward": len(avg_pools)} if avg_pools else {})}
    assert not adapter_calls["torch"]
    assert all(p.grad is not None for p in model.parameters())
