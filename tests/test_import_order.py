"""fastconv gives the same results whether torch was imported first, after it, or not at all,
`import fastconv` leaves os.environ alone, and torch's results and thread count do not change
because fastconv is in the process. Each order runs in its own interpreter (what is loaded
first can only be chosen once per process); the orders run side by side."""
import subprocess
import sys

import numpy as np
import pytest
from children import child_kwargs

pytest.importorskip("torch")

ORDERS = ("no_torch", "torch_first", "fastconv_first")

# Writes an .npz: fastconv's results (a LeNet-5 on real MNIST trained a few steps, direct and
# Winograd convolutions, pooling) and torch's when it is loaded. torch is "used" (threads set,
# one conv run), not only imported; torch_first runs torch's conv before fastconv is imported
# (the baseline) and again after fastconv has run its kernels.
CHILD = r'''
import os, sys
order, out_path, mnist_root = sys.argv[1:4]
results = {}

def use_torch(key):
    import torch
    torch.set_num_threads(2)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 8, 20, 20, generator=g)
    w = torch.randn(16, 8, 3, 3, generator=g)
    results[key] = torch.nn.functional.conv2d(x, w, padding=1).numpy()
    results[key + "_threads"] = torch.get_num_threads()

if order == "torch_first":
    use_torch("torch_before_fastconv")
env_before = dict(os.environ)
import numpy as np
import fastconv
results["env_changed"] = sorted(k for k in set(env_before) | set(os.environ)
                                 if env_before.get(k) != os.environ.get(k))
import fastconv.functional as F
from fastconv import data, models, nn
fastconv.set_num_threads(2)
images, labels = data.mnist(mnist_root, "test", dtype="float32", pad=2)
model = models.lenet5("relu", "max", seed=0)
opt = nn.SGD(model.parameters(), lr=0.05, momentum=0.9)
ce = nn.CrossEntropyLoss()
for step in range(4):
    xb, yb = images[step * 32:(step + 1) * 32], labels[step * 32:(step + 1) * 32]
    results[f"loss{step}"] = ce(model.forward(xb), yb)
    model.zero_grad()
    model.backward(ce.backward(), need_input_grad=False)
    opt.step()
results.update({"param_" + k: v for k, v in model.state_dict().items()})
rng = np.random.default_rng(0)
x = rng.standard_normal((2, 32, 28, 28)).astype(np.float32)
w = rng.standard_normal((48, 32, 3, 3)).astype(np.float32)
dy = rng.standard_normal((2, 48, 28, 28)).astype(np.float32)
results["direct"] = F.conv2d(x, w, padding=1, algorithm="direct")
results["winograd"] = F.conv2d(x, w, padding=1, algorithm="winograd_f4")
results["dw"] = F.conv2d_weight(x, w.shape, dy, padding=1)
results["pool"] = F.max_pool2d(x, 2)
if order != "no_torch":
    use_torch("torch_after_fastconv")
results["torch_loaded"] = "torch" in sys.modules
import numpy as np
np.savez(out_path, **{k: np.asarray(v) for k, v in results.items()})
'''


@pytest.fixture(scope="module")
def results(tmp_path_factory, mnist_dir):
    out = tmp_path_factory.mktemp("import_order")
    procs = {order: subprocess.Popen([sys.executable, "-c", CHILD, order, str(out / f"{order}.npz"), mnist_dir],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **child_kwargs())
             for order in ORDERS}
    for order, proc in procs.items():
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{order}:\n{output}"
    return {order: dict(np.load(out / f"{order}.npz")) for order in ORDERS}


def test_each_order_loaded_what_it_says(results):
    assert not results["no_torch"]["torch_loaded"]
    for order in ("torch_first", "fastconv_first"):
        assert results[order]["torch_loaded"]


@pytest.mark.parametrize("order", ["torch_first", "fastconv_first"])
def test_fastconv_results_do_not_depend_on_import_order(results, order):
    reference = results["no_torch"]
    keys = [k for k in reference if not k.startswith(("torch", "env"))]
    assert any(k.startswith("param_") for k in keys) and "winograd" in keys
    for key in keys:
        np.testing.assert_array_equal(results[order][key], reference[key], err_msg=key)


@pytest.mark.parametrize("order", ["no_torch", "torch_first", "fastconv_first"])
def test_import_fastconv_leaves_environment_alone(results, order):
    assert results[order]["env_changed"].tolist() == []


@pytest.mark.parametrize("order", ["torch_first", "fastconv_first"])
def test_torch_unchanged_by_fastconv(results, order):
    baseline = results["torch_first"]["torch_before_fastconv"]
    np.testing.assert_array_equal(results[order]["torch_after_fastconv"], baseline)
    assert results[order]["torch_after_fastconv_threads"] == 2
