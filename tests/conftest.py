"""Shared test setup.

CUDA: Numba reads NUMBA_ENABLE_CUDASIM once, when numba is first imported, so it is set here,
before any test module imports anything. Without an NVIDIA device node the CUDA tests run on
Numba's CPU simulator; with one they run on the GPU. An explicit NUMBA_ENABLE_CUDASIM in the
environment always wins (bench/gpu_check.sh sets 0). The CPU tests never import numba, so this
changes nothing for them.
"""
import os

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "0" if os.path.exists("/dev/nvidiactl") else "1")
