"""Receptive fields: the lecture's numbers, VGG-16's, and a cross-check against the region of
the input that one unit's gradient actually reaches, on several nets."""
import numpy as np
import pytest

from fastconv import models, nn
from fastconv.interpret import receptive_field
from fastconv.interpret.render import rf_table_html, rf_table_text


def _stack(*convs):
    layers = []
    for k in convs:
        layers += [nn.Conv2d(1, 1, k, seed=0), nn.ReLU()]
    return nn.Sequential(*layers)


def _by_name(records):
    return {r.name: r for r in records}


def test_stacked_3x3_see_as_far_as_one_5x5_or_7x7_with_fewer_weights():
    two = receptive_field(_stack(3, 3), 32)
    three = receptive_field(_stack(3, 3, 3), 32)
    seven = receptive_field(_stack(7), 32)
    assert two[-1].size == (5, 5)
    assert three[-1].size == seven[-1].size == (7, 7)
    # weights per (input, output) channel pair: 3 * 3x3 = 27 against 7x7 = 49
    assert sum(r.kernel_weights for r in three) == 27
    assert sum(r.kernel_weights for r in seven) == 49


def test_vgg16_at_224():
    # the FC head does not change the conv receptive fields; a narrow one builds in a second
    net = models.vgg(models.VGG_CONFIGS["vgg16"], hidden=8, num_classes=10, seed=0)
    rf = _by_name(receptive_field(net, 224))
    assert rf["features.28"].size == (196, 196)      # conv5_3
    assert rf["features.29"].size == (196, 196)      # its ReLU
    assert rf["features.30"].size == (212, 212)      # pool5
    assert rf["features.30"].jump == (32, 32)
    assert rf["features.30"].output_size == (7, 7)
    assert rf["features.0"].params == 3 * 64 * 9 + 64


def test_lenet_records():
    rf = receptive_field(models.lenet5("relu", "max", seed=0), 32)
    assert [r.name for r in rf][:3] == ["features.0", "features.1", "features.2"]
    assert [(r.size[0], r.jump[0], r.start[0], r.output_size[0]) for r in rf[:6]] == [
        (5, 1, 2.0, 28), (5, 1, 2.0, 28), (6, 2, 2.5, 14), (14, 2, 6.5, 10), (14, 2, 6.5, 10), (16, 4, 7.5, 5)]
    assert rf[-1].size == (32, 32) and rf[-1].kind == "Linear"


def _nets():
    yield "lenet", models.lenet5("relu", "max", seed=1), 32, ["features.0", "features.3", "features.5"]
    yield "vgg-small", models.vgg(((1, 4, 2), (4, 4, 2)), input_size=32, hidden=8, num_classes=3, seed=1), 32, \
        ["features.2", "features.4", "features.7", "features.9"]
    yield "strided-dilated-avg", nn.Sequential(
        nn.Conv2d(1, 3, 5, stride=2, padding=1, seed=1), nn.ReLU(), nn.AvgPool2d(3, 2, padding=1),
        nn.Conv2d(3, 3, 3, dilation=2, padding=2, seed=2), nn.ReLU(), nn.AvgPool2d(3, 2, padding=1),
        nn.Conv2d(3, 2, (3, 1), stride=(1, 2), seed=3)), 41, ["0", "2", "3", "5", "6"]


@pytest.mark.parametrize("label,net,size,layers", list(_nets()), ids=lambda v: v if isinstance(v, str) else "")
def test_receptive_field_equals_the_inputs_a_units_gradient_reaches(label, net, size, layers):
    """Positive weights and positive images keep every ReLU open, so the union over many images
    of the non-zero input gradient of one unit is its whole receptive field (max-pools route
    each image's gradient to one element per window; different images pick different ones).
    Padded max-pools are left out: with positive weights the units next to a zero border are
    systematically smaller and never win, so the gradient cannot show the field's full extent."""
    rng = np.random.default_rng(0)
    for p in net.parameters():
        p.data[...] = np.abs(p.data)
    records = _by_name(receptive_field(net, size))
    images = rng.random((48, 1, size, size)).astype(np.float32) + 0.05
    for layer in layers:
        out = net.forward(images, until=layer)
        h, w = out.shape[2:]
        for y, x in {(0, 0), (h // 2, w // 2), (h - 1, w - 1)}:
            seed = np.zeros_like(out)
            seed[:, 0, y, x] = 1
            g = net.backward_from(layer, seed)
            rows, cols = np.nonzero(np.abs(g).sum(axis=(0, 1)))
            got = (rows.min(), cols.min(), rows.max() + 1, cols.max() + 1)
            assert got == records[layer].box(y, x, (size, size)), (label, layer, y, x)


def test_table_text_and_html():
    rf = receptive_field(models.lenet5(seed=0), 32)
    text = rf_table_text(rf)
    assert text.splitlines()[0].split()[:2] == ["layer", "kind"]
    assert "features.3" in text and "14x14" in text
    html = rf_table_html(rf)
    assert html.startswith("<table") and html.count("<tr>") == len(rf) + 1


@pytest.mark.parametrize("bad", [0, -3, (32, 32, 3), "32", (0, 5), True])
def test_bad_input_size(bad):
    with pytest.raises((ValueError, TypeError), match="input_size"):
        receptive_field(models.lenet5(seed=0), bad)


def test_input_too_small_for_the_net():
    with pytest.raises(ValueError, match="too small"):
        receptive_field(models.lenet5(seed=0), 8)
