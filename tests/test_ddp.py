"""Scale-out through torch.distributed: examples/ddp_lenet.py trains a fastconv-patched LeNet-5
with DistributedDataParallel in 2 processes (gloo on 127.0.0.1) on two shards of real MNIST.
The replicas must end identical, and equal to one process (this one, through the example's own
functions, without torch.distributed) trained on the combined batches."""
import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from children import child_kwargs

torch = pytest.importorskip("torch")
if not torch.distributed.is_available():
    pytest.skip("this torch build has no torch.distributed", allow_module_level=True)

from safetensors.numpy import load_file  # noqa: E402

from conftest import rel_err  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ddp_lenet.py"
STEPS, BATCH = 4, 8


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(rank, port, save, mnist_dir):
    """One of 2 workers, with the environment torchrun would give it (loopback only)."""
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
               LOCAL_RANK=str(rank), WORLD_SIZE="2", GLOO_SOCKET_IFNAME="lo")
    cmd = [sys.executable, str(EXAMPLE), "--root", mnist_dir, "--split", "test", "--steps", str(STEPS),
           "--batch-size", str(BATCH), "--threads", "1", "--save", save]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **child_kwargs(env))


def load_example():
    spec = importlib.util.spec_from_file_location("ddp_lenet", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    return example


def numpy_state(model):
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def train_single_process(mnist_dir):
    """(initial, trained) weights of one process on the combined batch of 2 x BATCH."""
    example = load_example()
    args = example.parse_args(["--root", mnist_dir, "--split", "test", "--steps", str(STEPS),
                               "--batch-size", str(2 * BATCH)])
    sampler, loader = example.make_loader(args, rank=0, world=1)
    model = example.build_model(args.seed)
    initial = numpy_state(model)
    assert example.train(model, sampler, loader, args, torch.device("cpu"), verbose=False) == STEPS
    return initial, numpy_state(model)


def wait_for_workers(procs, timeout=240):
    """The workers' outputs once all have exited. A worker that fails ends the wait at once (the
    other would block in a collective until the timeout, hiding the real error): its peers are
    killed and every output is returned with the return codes set."""
    import time
    deadline = time.monotonic() + timeout
    while any(p.poll() is None for p in procs):
        if any(p.poll() not in (None, 0) for p in procs) or time.monotonic() > deadline:
            for p in procs:
                if p.poll() is None:
                    p.kill()
            break
        time.sleep(0.05)
    return [p.communicate()[0] for p in procs]


def run_workers(tmp_path, mnist_dir):
    """(start, single, outputs, procs): the 2 workers, with this process's single-process run
    while they train. A port taken between free_port() and the workers' bind is retried once
    with a new port; any other failure is returned as it is."""
    for attempt in range(2):
        port = free_port()
        procs = [launch(r, port, str(tmp_path / "rank{rank}.safetensors"), mnist_dir) for r in range(2)]
        try:
            if attempt == 0:
                start, single = train_single_process(mnist_dir)
            outputs = wait_for_workers(procs)
        finally:
            for p in procs:  # on an error here, leave no worker behind
                if p.poll() is None:
                    p.kill()
                    p.communicate()
        lost_port = any(p.returncode != 0 and "address already in use" in out.lower() for p, out in zip(procs, outputs))
        if not (lost_port and attempt == 0):
            return start, single, outputs, procs


def test_ddp_replicas_identical_and_equal_to_single_process(tmp_path, mnist_dir, adapter_calls):
    start, single, outputs, procs = run_workers(tmp_path, mnist_dir)
    # the single-process run (the example's own model and loop) ran fastconv's kernels, forward and
    # backward, at every step: the replicas, which match it, ran the same patched model
    for op in ("conv2d", "conv2d_weight", "conv2d_input", "max_pool2d", "max_pool2d_backward"):
        assert adapter_calls["fastconv"][op] >= STEPS, (op, adapter_calls)
    assert not adapter_calls["torch"], adapter_calls
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out
    assert f"trained {STEPS} steps on 2 process(es), global batch {2 * BATCH}" in outputs[0]

    rank0, rank1 = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")
    assert sorted(rank0) == sorted(single) == sorted(start)
    for name in start:
        assert np.array_equal(rank0[name], rank1[name]), name      # replicas bit-identical
        assert rel_err(rank0[name], single[name]) <= 1e-5, name     # = one process, combined batch
        assert rel_err(rank0[name], start[name]) > 1e-4, name       # and training moved every tensor
