"""Run-time controls: capabilities, threads, forcing an ISA."""
import os
import subprocess
import sys

import numpy as np

import fastconv
import fastconv.functional as F


def test_capabilities_report():
    caps = fastconv.capabilities()
    assert caps["isa"] in caps["available_isas"]
    assert caps["available_isas"][0] == "scalar"
    assert caps["threads"] >= 1
    assert set(caps) >= {"isa", "available_isas", "threads", "cuda", "gemm_kernel", "thread_pool"}


def test_use_isa_switches_kernel_and_restores():
    before = fastconv.capabilities()["isa"]
    with fastconv.use_isa("scalar"):
        assert fastconv.capabilities()["gemm_kernel"].endswith("__scalar")
    assert fastconv.capabilities()["isa"] == before


def test_env_var_forces_lower_isa(tmp_path):
    code = "import fastconv; print(fastconv.capabilities()['isa'], fastconv.capabilities()['gemm_kernel'])"
    env = dict(os.environ, FASTCONV_ISA="scalar")
    # run outside the checkout, so the child imports the same fastconv this test process uses
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=tmp_path)
    assert out.stdout.split() == ["scalar", "gemm_4x16__scalar"]


def test_set_num_threads_roundtrip():
    before = fastconv.get_num_threads()
    try:
        fastconv.set_num_threads(1)
        assert fastconv.get_num_threads() == 1
        x = np.ones((1, 2, 5, 5), np.float32)
        assert F.conv2d(x, np.ones((1, 2, 3, 3), np.float32))[0, 0, 0, 0] == 18
    finally:
        fastconv.set_num_threads(before)
