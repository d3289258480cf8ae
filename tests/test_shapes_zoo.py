"""fastconv._shapes.ZOO, generated from compact definitions of five nets, is checked here against
the torch twins of those nets (tests/torch_zoo.py): every Conv2d each twin runs on a 224x224
image, with the map it reads, so the zoo cannot drift from the nets it claims to measure."""
import functools

import pytest

from fastconv._shapes import ZOO, ZOO_BATCH8, ZOO_NETS, net_convs

torch = pytest.importorskip("torch")
import torch_zoo  # noqa: E402


@functools.lru_cache(maxsize=None)
def twin_geometries(net):
    """(C, K, R, S, stride, padding, dilation, groups, H, W) of every conv of the torch twin, in order."""
    out = []
    for _, conv, (n, c, h, w) in torch_zoo.conv_layers(torch_zoo.build(net, num_classes=10)):
        assert n == 1 and c == conv.in_channels
        assert len(set(conv.stride)) == len(set(conv.padding)) == len(set(conv.dilation)) == 1  # square
        out.append((c, conv.out_channels, *conv.kernel_size, conv.stride[0], conv.padding[0], conv.dilation[0],
                    conv.groups, h, w))
    return out


@pytest.mark.parametrize("net", list(ZOO_NETS))
def test_each_net_walk_matches_its_torch_twin_layer_by_layer(net):
    assert [s.geometry for s in net_convs(net)] == twin_geometries(net)


def test_zoo_is_the_distinct_layers_of_the_five_twins_in_first_run_order():
    distinct = {}
    for net in torch_zoo.BUILDERS:
        for g in twin_geometries(net):
            distinct.setdefault(g, net)
    assert [s.geometry for s in ZOO] == list(distinct)
    assert [s.name.split()[0] for s in ZOO] == list(distinct.values())
    assert len(ZOO) == 73


def test_zoo_shapes_describe_the_same_convolution_torch_runs():
    for s in ZOO:
        assert s.batch == 1 and s.weight_shape[1] * s.groups == s.in_channels
        conv = torch.nn.Conv2d(s.in_channels, s.out_channels, s.kernel, s.stride, s.padding, s.dilation, s.groups)
        assert tuple(conv.weight.shape) == s.weight_shape
        assert conv(torch.zeros(s.input_shape)).shape[-1] == s.out_size


def test_batch8_subset_is_zoo_layers_at_batch_8():
    geometries = {s.geometry for s in ZOO}
    assert ZOO_BATCH8 and all(s.batch == 8 and s.geometry in geometries for s in ZOO_BATCH8)
    kinds = {(s.kernel, s.stride, s.groups > 1) for s in ZOO}
    assert kinds == {(s.kernel, s.stride, s.groups > 1) for s in ZOO_BATCH8}
