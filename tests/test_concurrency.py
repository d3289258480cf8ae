"""Ops called from many Python threads at once give bitwise the results of serial calls (the
bindings release the GIL, so the kernels, their workspaces and the thread pool really run
concurrently), and repeated calls do not leak memory."""
import threading

import numpy as np
import pytest

import fastconv.functional as F
from fastconv.augment import functional as A
from fastconv.augment import matrices as M

N_THREADS = 8


def workload(rng):
    """(name, zero-argument call) pairs covering direct (im2col and shifted-row paths), Winograd,
    both conv gradients, pooling and the augmentation kernels, on small shapes."""
    x = rng.standard_normal((2, 8, 14, 14)).astype(np.float32)
    w = rng.standard_normal((12, 8, 3, 3)).astype(np.float32)
    b = rng.standard_normal(12).astype(np.float32)
    dy = rng.standard_normal((2, 12, 14, 14)).astype(np.float32)
    ww = F.winograd_weights(w, tile=4)
    img = rng.random((3, 3, 17, 15)).astype(np.float32)
    m = M.about(M.rotation(rng.uniform(-40, 40, 3)) @ M.scaling(rng.uniform(0.8, 1.2, 3)), *M.center((17, 15)))
    return [
        ("conv direct stride 1", lambda: F.conv2d(x, w, b, padding=1, algorithm="direct")),
        ("conv direct stride 2", lambda: F.conv2d(x, w, b, stride=2, padding=1, algorithm="direct")),
        ("conv grouped dilated", lambda: F.conv2d(x, w[:, :4], groups=2, dilation=2, padding=2)),
        ("conv winograd f4", lambda: F.conv2d(x, w, b, padding=1, algorithm="winograd_f4")),
        ("conv winograd f6", lambda: F.conv2d(x, w, b, padding=1, algorithm="winograd_f6")),
        ("conv pretransformed", lambda: F.conv2d(x, ww, b, padding=1)),
        ("conv input grad", lambda: F.conv2d_input(x.shape, w, dy, padding=1)),
        ("conv weight grad", lambda: F.conv2d_weight(x, w.shape, dy, padding=1)),
        ("max pool + indices", lambda: F.max_pool2d(x, 3, 2, 1, return_indices=True)),
        ("avg pool", lambda: F.avg_pool2d(x, 2)),
        ("warp bilinear", lambda: A.warp_affine(img, m, border="reflect")),
        ("warp nearest", lambda: A.warp_affine(img, m, interpolation="nearest")),
        ("blur", lambda: A.gaussian_blur(img, [0.8, 1.5, 2.5])),
        ("colour", lambda: A.adjust_color(img, 1.1, 0.9, 1.2, 0.05)),
        ("noise", lambda: A.gaussian_noise(img, 0.1, key=7)),
    ]


def flat(result):
    return result if isinstance(result, tuple) else (result,)


def test_eight_threads_give_the_serial_results(rng):
    ops = workload(rng)
    serial = [flat(call()) for _, call in ops]
    got = [[None] * len(ops) for _ in range(N_THREADS)]
    errors = []
    start = threading.Barrier(N_THREADS)

    def worker(t):
        try:
            start.wait()
            for rep in range(10):
                # each thread walks the list from its own starting point, so different ops overlap
                for k in range(len(ops)):
                    i = (k + t * 2 + rep) % len(ops)
                    got[t][i] = flat(ops[i][1]())
        except Exception as e:  # reported below: an exception in a thread would otherwise vanish
            errors.append((t, repr(e)))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(N_THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not any(th.is_alive() for th in threads), "a thread hung"
    assert not errors, errors
    for t in range(N_THREADS):
        for i, (name, _) in enumerate(ops):
            for a, e in zip(got[t][i], serial[i]):
                np.testing.assert_array_equal(a, e, err_msg=f"thread {t}: {name}")


def _rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


@pytest.mark.slow
def test_thousand_repeated_calls_do_not_grow_memory(rng):
    """RSS after 100 warm-up rounds of every op vs after 1,000 more (docs/RELIABILITY.md
    records the figure: run with -s)."""
    ops = workload(rng)
    for _ in range(100):
        for _, call in ops:
            call()
    before = _rss_mib()
    for _ in range(1000):
        for _, call in ops:
            call()
    after = _rss_mib()
    print(f"RSS {before:.1f} MiB -> {after:.1f} MiB over 1,000 rounds of {len(ops)} ops")
    assert after - before < 8, (before, after)
