"""The one door: both backends implement every op of fastconv.backend.BACKEND_OPS with the same
signature, and only fastconv.device (and the backends) ask where an array lives."""
import ast
import inspect
import pathlib

import numpy as np
import pytest

from fastconv import _cpu, backend, cuda, device

ROOT = pathlib.Path(__file__).resolve().parent.parent / "fastconv"
# The layers above the backends: they reach kernels through fastconv.backend.backend_of only.
CALLERS = ["functional.py", "train.py", *(f"nn/{p.name}" for p in (ROOT / "nn").glob("*.py"))]
# Device tests left outside the backends (48 before the door): functional's CPU-only
# WinogradWeights (1), the host-only target conversion and range check of cross_entropy (2),
# MSELoss's host list conversion (1), the optimizers' one-time state move after Module.to (1),
# Module.astype (1), nn.Conv2d's cache of Winograd-transformed weights, which only the CPU
# backend takes (1), nn.Linear's transposed weight for input_grad, a copy only on a device (1).
# (The empty batch asks backend_named("cpu"); Module.device is device_of.)
MAX_DEVICE_IFS = 8
DEVICE_QUESTIONS = {"is_cuda_array", "is_host", "device_of", "_cpu", "cuda", "ndarray"}


@pytest.mark.parametrize("name", backend.BACKEND_OPS)
def test_both_backends_define_the_op_with_one_signature(name):
    host, gpu = getattr(_cpu, name, None), getattr(cuda, name, None)
    assert callable(host), f"fastconv._cpu lacks {name}"
    assert callable(gpu), f"fastconv.cuda lacks {name}"
    assert inspect.signature(host) == inspect.signature(gpu), name


def _device_ifs(path):
    """if statements / conditional expressions whose test names a device question."""
    tree = ast.parse(path.read_text())
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.If, ast.IfExp)):
            names = {n.id for n in ast.walk(node.test) if isinstance(n, ast.Name)}
            names |= {n.attr for n in ast.walk(node.test) if isinstance(n, ast.Attribute)}
            if names & DEVICE_QUESTIONS:
                hits.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return hits


def test_device_ifs_outside_the_backends_are_few():
    hits = [h for f in CALLERS for h in _device_ifs(ROOT / f)]
    assert len(hits) <= MAX_DEVICE_IFS, hits


def test_callers_do_not_import_a_backend_directly():
    for f in CALLERS:
        tree = ast.parse((ROOT / f).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported = {node.module} | {f"{node.module}.{a.name}" for a in node.names}
                assert not {"fastconv._cpu", "fastconv.cuda", "fastconv._C"} & imported, \
                    f"{f}:{node.lineno} imports a backend"


def test_backend_of_picks_and_refuses_mixing():
    x = np.zeros(3, np.float32)
    assert backend.backend_of(x, None) is _cpu

    class FakeCuda:  # anything exposing __cuda_array_interface__ counts as a CUDA array
        __cuda_array_interface__ = {"shape": (3,), "typestr": "<f4", "data": (0, False), "version": 3}

    assert device.is_cuda_array(FakeCuda()) and not device.is_cuda_array(x)
    assert backend.backend_of(FakeCuda()) is cuda
    with pytest.raises(TypeError, match="mix"):
        backend.backend_of(x, FakeCuda())


@pytest.mark.parametrize("bad", ["gpu", "CPU0", None])
def test_check_device_names_the_argument(bad):
    with pytest.raises(ValueError, match="device"):
        device.check_device(bad)


def test_move_round_trip_on_host():
    x = np.arange(4.0)
    assert device.move(x, "cpu") is x and device.move(None, "cuda") is None
    assert device.check_device("cuda:1") == "cuda"
