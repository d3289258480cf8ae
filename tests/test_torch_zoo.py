"""The plain-torch twins in tests/torch_zoo.py keep torchvision's layouts: parameter counts equal
torchvision's published figures, and each net maps a 224x224 image to 1000 logits."""
import pytest

torch = pytest.importorskip("torch")
import torch_zoo  # noqa: E402


@pytest.mark.parametrize("name", list(torch_zoo.BUILDERS))
def test_twin_parameter_count_matches_torchvision(name):
    model = torch_zoo.build(name)
    assert sum(p.numel() for p in model.parameters()) == torch_zoo.PARAMETER_COUNTS[name]


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_twin_forward_shape(name):
    model = torch_zoo.build(name).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)


def test_unknown_net_is_a_value_error():
    with pytest.raises(ValueError, match="net must be one of"):
        torch_zoo.build("resnet7")
