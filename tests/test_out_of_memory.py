"""A kernel whose scratch cannot be allocated raises MemoryError and leaves the process, and the
kernel's per-thread buffers, fit for the next call. Each case runs in its own interpreter under
an address-space limit (RLIMIT_AS) set just above what it already holds, after its arrays exist,
so that only the kernels' own scratch - allocated inside their parallel loops - fails."""
import subprocess
import sys

import pytest
from children import child_kwargs

# Not run by tools/sanitize.sh: ASan's shadow memory cannot live under an address-space limit.

CHILD = r'''
import resource, sys
import numpy as np
import fastconv, fastconv.functional as F
fastconv.set_num_threads(2)
algorithm = sys.argv[1]
rng = np.random.default_rng(0)
small_x = rng.standard_normal((1, 8, 12, 12)).astype(np.float32)
small_w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
big_x = rng.standard_normal((8, 256, 48, 48)).astype(np.float32)
big_w = rng.standard_normal((256, 256, 3, 3)).astype(np.float32)
small_y = F.conv2d(small_x, small_w, padding=1, algorithm=algorithm)   # warms the per-thread buffers
big_y = np.empty((8, 256, 48, 48), np.float32)
# The reference runs another algorithm, so the one under test has only ever seen the small
# shape: under the limit its per-thread scratch must grow (a warm, grown buffer needs nothing).
reference = "winograd_f4" if algorithm == "direct" else "direct"
expected = F.conv2d(big_x, big_w, padding=1, algorithm=reference)  # computed before the limit
F.conv2d(big_x, big_w, padding=1, algorithm=reference, out=big_y)  # ... and so is every Python-side array

def held_bytes():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))

soft, hard = resource.getrlimit(resource.RLIMIT_AS)
resource.setrlimit(resource.RLIMIT_AS, (held_bytes() + (8 << 20), hard))
try:
    F.conv2d(big_x, big_w, padding=1, algorithm=algorithm, out=big_y)
    outcome = "ran"  # the scratch fitted after all: nothing was tested
except MemoryError:
    outcome = "MemoryError"
resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
print(outcome)
np.testing.assert_array_equal(F.conv2d(small_x, small_w, padding=1, algorithm=algorithm), small_y)
F.conv2d(big_x, big_w, padding=1, algorithm=algorithm, out=big_y)
assert np.abs(big_y - expected).max() <= 1e-3 * np.abs(expected).max()  # Winograd's float32 error
print("fine")
'''


@pytest.mark.parametrize("algorithm", ["winograd_f4", "winograd_f6", "direct"])
def test_failed_scratch_allocation_raises_memory_error_and_the_next_call_works(algorithm):
    proc = subprocess.run([sys.executable, "-c", CHILD, algorithm], capture_output=True, timeout=300,
                          **child_kwargs())
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["MemoryError", "fine"], proc.stdout + proc.stderr[-3000:]
