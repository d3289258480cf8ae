"""Where torch has loaded its libgomp into the global symbol scope, fastconv's loops run on that
OpenMP team (csrc/common/host_openmp.h); without it, on fastconv's own pool. Either way the
results are the pool's. Each case runs in a fresh interpreter, since what is loaded is
process-wide."""
import json
import subprocess
import sys

import numpy as np
import pytest
from children import child_kwargs

pytest.importorskip("torch")

CHILD = r"""
import json, sys
import numpy as np
if sys.argv[1] == "torch":
    import torch
    torch.set_num_threads(2)
    torch.relu(torch.ones(1000))  # torch's OpenMP team now exists and spins
import fastconv, fastconv.functional as F
fastconv.set_num_threads(2)
rng = np.random.default_rng(7)
x = rng.standard_normal((2, 16, 18, 18)).astype(np.float32)
w = rng.standard_normal((24, 16, 3, 3)).astype(np.float32)
dy = rng.standard_normal((2, 24, 18, 18)).astype(np.float32)
out = {
    "direct": F.conv2d(x, w, padding=1, algorithm="direct"),
    "winograd": F.conv2d(x, w, padding=1, algorithm="winograd_f4"),
    "dx": F.conv2d_input(x.shape, w, dy, padding=1),
    "pool": F.max_pool2d(x, 2),
}
np.savez(sys.argv[2], **out)
print(json.dumps(fastconv.capabilities()["thread_pool"]))
"""


def run_child(tmp_path, mode, env_extra=None):
    out = tmp_path / f"{mode}-{len(env_extra or {})}.npz"
    kw = child_kwargs()  # imports the fastconv these tests imported (the checkout's, or the installed one)
    kw["env"].update(env_extra or {})
    done = subprocess.run([sys.executable, "-c", CHILD, mode, str(out)], capture_output=True, timeout=120, **kw)
    assert done.returncode == 0, done.stderr
    with np.load(out) as f:
        return json.loads(done.stdout.strip().splitlines()[-1]), {k: f[k] for k in f.files}


def test_without_torch_the_own_pool_runs(tmp_path):
    pool, _ = run_child(tmp_path, "plain")
    assert pool["runs_on"] == "own pool"
    assert pool["workers_started"] >= 1


def test_with_torch_loaded_the_host_team_runs_and_results_match(tmp_path):
    pool, host = run_child(tmp_path, "torch")
    assert pool["runs_on"].startswith("host OpenMP team")
    assert pool["workers_started"] == 0  # fastconv started no threads of its own
    own_pool, own = run_child(tmp_path, "torch", {"FASTCONV_HOST_OPENMP": "0"})
    assert own_pool["runs_on"] == "own pool"
    for name in own:  # the same items, computed the same way: only the threads differ
        np.testing.assert_allclose(host[name], own[name], rtol=1e-6, atol=1e-6, err_msg=name)
