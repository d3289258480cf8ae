"""The harness pieces bench/ relies on: whole programs timed in alternating processes, the
pinned-allocator environment that keeps torch (and us) out of per-call page faults, markdown."""
import os
import subprocess
import sys

import pytest
from children import env_without_sanitizer

from fastconv import timing


def _child(seconds):
    """A program that prints some output, then its time the way report_seconds does."""
    return [sys.executable, "-c", f"print('noise'); print('{{\"seconds\": {seconds}}}')"]


def test_report_seconds_is_what_time_in_processes_reads(capsys):
    timing.report_seconds(0.5)
    assert capsys.readouterr().out == '{"seconds": 0.5}\n'


def test_time_in_processes_alternates_and_reads_each_process_time():
    cmp = timing.time_in_processes({"a": _child(0.5), "b": _child(0.25)}, rounds=3)
    assert cmp.times == {"a": [0.5] * 3, "b": [0.25] * 3}
    assert cmp.ratio("a", "b").median == pytest.approx(2.0)


def test_time_in_processes_reports_a_failing_child():
    with pytest.raises(RuntimeError, match="bad failed"):
        timing.time_in_processes({"bad": [sys.executable, "-c", "raise SystemExit(3)"]}, rounds=3)
    with pytest.raises(ValueError, match="rounds"):
        timing.time_in_processes({"a": _child(1)}, rounds=2)


def test_pinned_allocator_reuses_freed_blocks():
    """The claim behind FAST_ALLOCATOR_ENV: with it, a freed 64 MB block is reused instead of
    being unmapped and page-faulted back in on the next allocation."""
    code = ("import resource, numpy as np\n"
            "def churn():\n"
            "    a = np.ones(16 << 20, np.float32); del a\n"
            "churn()\n"
            "f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
            "for _ in range(5): churn()\n"
            "print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 5)")
    env = {**env_without_sanitizer(), **timing.FAST_ALLOCATOR_ENV}  # glibc's malloc, not ASan's
    faults = float(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                  check=True).stdout)
    assert faults < 100  # 64 MB of fresh 4 KiB pages would be ~16,000


def test_ensure_fast_allocator_is_a_no_op_once_in_effect(monkeypatch):
    for k, v in timing.FAST_ALLOCATOR_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(os, "execve", lambda *a: pytest.fail("re-executed although the env was set"))
    timing.ensure_fast_allocator()
    assert "malloc thresholds pinned" in timing.machine_line(2)


def test_markdown_table():
    assert timing.markdown_table(["a", "b"], [[1, "x"]]) == "| a | b |\n|---|---|\n| 1 | x |"
