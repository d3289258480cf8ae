"""fastconv's own thread pool: several Python threads at once, set_num_threads from another
thread mid-computation, more threads than cores, fork(), and an idle pool that sleeps."""
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import fastconv
import fastconv.functional as F
from children import child_kwargs
from conftest import rel_err


@pytest.fixture
def restore_threads():
    before = fastconv.get_num_threads()
    yield
    fastconv.set_num_threads(before)


def _problem(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 16, 18, 18)).astype(np.float32)
    w = rng.standard_normal((24, 16, 3, 3)).astype(np.float32)
    dy = rng.standard_normal((2, 24, 18, 18)).astype(np.float32)
    return x, w, dy


def _ops(x, w, dy):
    """A mix of kernels: direct and Winograd forward, both gradients, pooling."""
    return {
        "direct": F.conv2d(x, w, padding=1, algorithm="direct"),
        "winograd": F.conv2d(x, w, padding=1, algorithm="winograd_f4"),
        "dx": F.conv2d_input(x.shape, w, dy, padding=1),
        "dw": F.conv2d_weight(x, w.shape, dy, padding=1),
        "pool": F.max_pool2d(x, 2),
    }


def test_python_threads_while_another_changes_the_thread_count(restore_threads):
    """Each worker raises its own thread count before every round of kernels; the toggler
    lowers the setting (which applies to running callers at once) in the middle of them."""
    problem = _problem(0)
    fastconv.set_num_threads(1)
    expected = _ops(*problem)
    stop = threading.Event()
    failures = []

    def toggle():
        n = 0
        while not stop.is_set():
            fastconv.set_num_threads(1 + n % 3)
            n += 1
            time.sleep(0.0005)

    def work():
        try:
            for _ in range(6):
                fastconv.set_num_threads(4)
                got = _ops(*problem)
                for name in ("direct", "pool"):  # independent of the thread count: bitwise
                    np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
                for name in ("winograd", "dx", "dw"):
                    assert rel_err(got[name], expected[name]) < 1e-5, name
        except Exception as e:  # re-raised in the test thread below
            failures.append(e)

    toggler = threading.Thread(target=toggle)
    workers = [threading.Thread(target=work) for _ in range(4)]
    toggler.start()
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=120)
    stop.set()
    toggler.join()
    assert not any(t.is_alive() for t in workers), "a kernel call hung"
    assert not failures, failures[0]


def test_thread_count_lowers_everywhere_and_rises_per_thread(restore_threads):
    """A kernel may size buffers, run a loop, and size more: its thread count must not grow
    under it. So another thread's lower setting applies here at once, a higher one only once
    this thread asks for it."""
    fastconv.set_num_threads(3)

    def set_from_other_thread(n):
        t = threading.Thread(target=fastconv.set_num_threads, args=(n,))
        t.start()
        t.join()

    set_from_other_thread(2)
    assert fastconv.get_num_threads() == 2
    set_from_other_thread(4)
    assert fastconv.get_num_threads() == 2
    fastconv.set_num_threads(4)
    assert fastconv.get_num_threads() == 4


@pytest.mark.parametrize("threads", [3, 8])
def test_more_threads_than_cores_is_correct_and_reproducible(restore_threads, threads):
    x, w, dy = _problem(1)
    fastconv.set_num_threads(1)
    expected = _ops(x, w, dy)
    fastconv.set_num_threads(threads)
    assert fastconv.get_num_threads() == threads
    first = _ops(x, w, dy)
    for name in expected:
        assert rel_err(first[name], expected[name]) < 1e-5, name
    # The weight gradient's per-chunk partial sums are added in a fixed order: repeated runs
    # with the same thread count agree bit for bit, whichever thread ran which chunk.
    for _ in range(3):
        again = _ops(x, w, dy)
        for name in expected:
            np.testing.assert_array_equal(again[name], first[name], err_msg=name)


def test_forked_child_runs_kernels(restore_threads):
    """Threads that ran the parent's kernels (the pool's workers, or the host OpenMP team when
    torch is loaded) do not exist in the child: it must run on workers of its own instead of
    waiting for them forever."""
    x, w, dy = _problem(2)
    fastconv.set_num_threads(2)
    expected = F.conv2d_weight(x, w.shape, dy, padding=1)  # the parent's team now exists
    pool = fastconv.capabilities()["thread_pool"]
    assert pool["workers_started"] >= 1 or pool["runs_on"].startswith("host OpenMP")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: compute, report, exit without running pytest's teardown
        try:
            got = F.conv2d_weight(x, w.shape, dy, padding=1)
            pool = fastconv.capabilities()["thread_pool"]
            own = pool["workers_started"] >= 1 and pool["runs_on"] == "own pool"
            os.write(write_end, b"ok" if np.array_equal(got, expected) and own else b"wrong")
        finally:
            os._exit(0)
    os.close(write_end)
    deadline = time.monotonic() + 60
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung in a kernel")
        time.sleep(0.01)
    answer = os.read(read_end, 16)
    os.close(read_end)
    assert answer == b"ok"


# In a fresh child, fastconv's pool workers are the threads its first kernel starts; their own CPU
# time (utime + stime from /proc/self/task/TID/stat, in clock ticks) is read over an idle spell,
# so no other thread of the process (torch's, BLAS's, pytest's) can count against them.
_IDLE_WORKERS = """
import os, time
import numpy as np
import fastconv, fastconv.functional as F

def tasks():
    return set(os.listdir("/proc/self/task"))

def cpu_ticks(tid):
    with open(f"/proc/self/task/{tid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))

before = tasks()
fastconv.set_num_threads(2)
x = np.random.default_rng(0).standard_normal((2, 8, 32, 32)).astype(np.float32)
w = np.random.default_rng(1).standard_normal((8, 8, 3, 3)).astype(np.float32)
for _ in range(20):
    F.conv2d(x, w, padding=1)
workers = sorted(tasks() - before)
time.sleep(0.2)
start = {tid: cpu_ticks(tid) for tid in workers}
wall0 = time.perf_counter()
time.sleep(1.0)
wall = time.perf_counter() - wall0
used = max(cpu_ticks(tid) - start[tid] for tid in workers) / os.sysconf("SC_CLK_TCK")
print(len(workers), used, wall)
"""


def test_idle_pool_sleeps():
    """After a kernel the workers spin for microseconds, then sleep: an idle pool takes no
    CPU time from torch, numpy's BLAS or other processes. Each worker's CPU time over 1 s of
    idling stays under 5 % of it (a busy-waiting worker would take up to 100 %; clock ticks are
    10 ms, so a sleeping one shows 0 or 1)."""
    proc = subprocess.run([sys.executable, "-c", _IDLE_WORKERS], capture_output=True, timeout=120, **child_kwargs())
    assert proc.returncode == 0, proc.stderr
    workers, used, wall = proc.stdout.split()
    assert int(workers) >= 1, proc.stdout  # the kernel started the pool's workers
    assert float(used) < 0.05 * float(wall), f"a worker used {used} s of CPU time in {wall} s of idling"


def test_set_num_threads_rejects_bad_values():
    with pytest.raises(ValueError, match="num_threads"):
        fastconv.set_num_threads(0)
    with pytest.raises(TypeError, match="num_threads"):
        fastconv.set_num_threads(2.0)
