"""Shared test helpers: error metrics, the ISA list, optional torch, the MNIST folder.

CUDA: Numba reads NUMBA_ENABLE_CUDASIM once, when numba is first imported, so it is set here,
before any test module imports anything. Without an NVIDIA device node the CUDA tests run on
Numba's CPU simulator; with one they run on the GPU. An explicit NUMBA_ENABLE_CUDASIM in the
environment always wins (bench/gpu_check.sh sets 0). The CPU tests never import numba.
"""
import collections
import os
import sys
import zlib

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "0" if os.path.exists("/dev/nvidiactl") else "1")
from pathlib import Path

import numpy as np
import pytest

import fastconv
import fastconv.functional

ISAS = fastconv.capabilities()["available_isas"]

try:
    import torch
except ImportError:  # the torch tests skip, and the run fails (see HARDWARE below)
    torch = None


def rel_err(got, ref):
    """max |got - ref| / max |ref| (the metric the tolerances are stated in)."""
    got = np.asarray(got, np.float64)
    ref = np.asarray(ref, np.float64)
    if ref.size == 0:  # an empty result: nothing to compare once the shapes agree
        assert got.shape == ref.shape, (got.shape, ref.shape)
        return 0.0
    scale = np.abs(ref).max()
    return float(np.abs(got - ref).max() / (scale if scale > 0 else 1.0))


def conv_passes_at_threads(threads, x, wt, b, dy, kw):
    """fastconv's forward, input and weight gradient of one conv, run on `threads` threads (the
    thread count restored after), beside the float64 reference's: each pair must agree."""
    import fastconv.reference as reference
    before = fastconv.get_num_threads()
    try:
        fastconv.set_num_threads(threads)
        F = fastconv.functional
        got = (F.conv2d(x, wt, b, **kw), F.conv2d_input(x.shape, wt, dy, **kw), F.conv2d_weight(x, wt.shape, dy, **kw))
    finally:
        fastconv.set_num_threads(before)
    want = (reference.conv2d(x, wt, b, **kw), reference.conv2d_input(x.shape, wt, dy, **kw),
            reference.conv2d_weight(x, wt.shape, dy, **kw))
    return zip(got, want)


# Winograd's float32 bound per tile, as max |error| / max |float64 reference|: its error grows
# with the tile (the transforms' points reach +-2 and +-1/2), so it is stated against the output's
# scale, not element-wise.
WINOGRAD_TOL32 = {"winograd_f2": 1e-5, "winograd_f4": 5e-5, "winograd_f6": 2e-4}


def tolerance(dtype, reduction_len):
    """Direct conv is a plain sum: float32 error grows ~ sqrt(reduction length) * eps."""
    if np.dtype(dtype) == np.float64:
        return 1e-12
    return 2e-6 * max(1.0, np.sqrt(reduction_len))


@pytest.fixture(params=ISAS)
def isa(request):
    with fastconv.use_isa(request.param):
        yield request.param


def seed_for(nodeid):
    """A seed fixed per test (CRC-32 of its id, stable across runs, unlike hash()), unless
    FASTCONV_TEST_SEED overrides it to reproduce or vary a run."""
    override = os.environ.get("FASTCONV_TEST_SEED")
    return int(override) if override else zlib.crc32(nodeid.encode())


@pytest.fixture
def rng(request):
    """A generator seeded per test; the seed is printed, so pytest shows it with any failure."""
    seed = seed_for(request.node.nodeid)
    print(f"rng seed {seed} (rerun with FASTCONV_TEST_SEED={seed})")
    return np.random.default_rng(seed)


@pytest.fixture(scope="session")
def mnist_dir():
    root = os.environ.get("FASTCONV_MNIST_DIR") or str(Path(__file__).resolve().parent / "data" / "mnist")
    if not any(Path(root, "t10k-images-idx3-ubyte" + s).exists() for s in (".gz", "")):
        pytest.fail(f"MNIST not found at {root}: set FASTCONV_MNIST_DIR")
    return root


ADAPTER_FASTCONV_OPS = ("conv2d", "conv2d_input", "conv2d_weight", "max_pool2d", "max_pool2d_backward",
                        "avg_pool2d", "avg_pool2d_backward")
ADAPTER_TORCH_OPS = ("conv2d", "max_pool2d", "max_pool2d_with_indices", "avg_pool2d")


@pytest.fixture
def adapter_calls(monkeypatch):
    """{"fastconv": Counter, "torch": Counter}: calls of fastconv.functional's conv / pooling ops
    (the one door to fastconv's kernels) and of torch.nn.functional's, by name, while the test
    runs. The proof that fastconv.torch ran fastconv's kernels: torch's forward, which a module
    falls back to for inputs fastconv cannot run, gives the same numbers."""
    if torch is None:
        pytest.fail("adapter_calls needs torch")
    counts = {"fastconv": collections.Counter(), "torch": collections.Counter()}
    for module, names, key in ((fastconv.functional, ADAPTER_FASTCONV_OPS, "fastconv"),
                               (torch.nn.functional, ADAPTER_TORCH_OPS, "torch")):
        for name in names:
            def spy(*args, _real=getattr(module, name), _name=name, _key=key, **kwargs):
                counts[_key][_name] += 1
                return _real(*args, **kwargs)
            monkeypatch.setattr(module, name, spy)
    return counts


# A test may skip only where this machine lacks hardware (a GPU, a CPU feature): such skips say so
# through hardware() / skip_for_hardware(). Any other skip (a missing package or program, which
# the README's test command installs) is listed at the end and fails the run, so a green run
# skipped nothing but hardware.
HARDWARE = "hardware: "
_OTHER_SKIPS = []


def hardware(reason):
    """A skip reason for missing (or present, where a test needs it absent) hardware."""
    return HARDWARE + reason


def skip_for_hardware(reason):
    pytest.skip(hardware(reason), allow_module_level=True)


def _note_other_skips(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if HARDWARE not in reason:
            _OTHER_SKIPS.append(f"{report.nodeid}: {reason}")


def pytest_runtest_logreport(report):
    _note_other_skips(report)


def pytest_collectreport(report):
    _note_other_skips(report)


def pytest_terminal_summary(terminalreporter):
    if _OTHER_SKIPS:
        terminalreporter.section("skipped for a reason other than missing hardware", red=True)
        for line in _OTHER_SKIPS:
            terminalreporter.line(line)
        terminalreporter.line("the README's test command installs every package and program the tests need")


def pytest_sessionfinish(session, exitstatus):
    if _OTHER_SKIPS and exitstatus == 0:
        session.exitstatus = 1


def require_cuda_backend(cuda):
    """Gate for the CUDA test modules, called at import. They run on the simulator or a usable
    GPU. An NVIDIA device node with CUDA unusable (driver or toolkit broken) fails them rather
    than passing as "no GPU"; they skip only when the simulator is off and there is no device."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" or cuda.is_available():
        return
    try:
        cuda.current_context()
        why = "cuda.is_available() is False"
    except Exception as e:  # the driver's own reason, for the message
        why = " ".join(f"{type(e).__name__}: {e}".split())
    if os.path.exists("/dev/nvidiactl"):
        pytest.fail(f"/dev/nvidiactl exists but CUDA is unusable: {why}", pytrace=False)
    skip_for_hardware(f"NUMBA_ENABLE_CUDASIM=0 and no NVIDIA device ({why})")


@pytest.fixture(scope="module")
def fast_simulator():
    """On Numba's CUDA simulator, a shorter thread switch interval (~3x faster tests): its
    block loop busy-polls the CUDA threads under the GIL. Restored afterwards."""
    old = sys.getswitchinterval()
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        sys.setswitchinterval(5e-4)
    yield
    sys.setswitchinterval(old)


@pytest.fixture(scope="session")
def trained_lenet(mnist_dir, tmp_path_factory):
    """A LeNet-5 (ReLU, max-pool) trained once per test run on the first 8,000 MNIST test
    digits (2 epochs, ~6 s on a quiet machine; ~96.6 % on the other 2,000), cached as safetensors in pytest's
    temporary directory. Returns a loader: each call gives a fresh copy of the trained net,
    so tests cannot disturb one another."""
    from fastconv import data, models, nn
    from fastconv.train import fit

    path = tmp_path_factory.mktemp("trained_lenet") / "lenet5.safetensors"
    x, y = data.mnist(mnist_dir, "test", pad=2, dtype="float32")
    net = models.lenet5("relu", "max", seed=0)
    fit(net, (x[:8000], y[:8000]), epochs=2, batch_size=64, optimizer=nn.Adam(net.parameters(), lr=3e-3),
        progress=False, seed=0)
    fastconv.save(net, path)

    def load():
        fresh = models.lenet5("relu", "max")
        fastconv.load_into(fresh, path)
        return fresh.eval()

    return load
