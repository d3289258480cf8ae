"""fastconv.timing: the harness behind every ratio fastconv prints."""
import time

import pytest

from fastconv.timing import Comparison, Ratio, compare, geomean, machine_line


def _sleeper(seconds):
    return lambda: time.sleep(seconds)


class FakeClock:
    """time.perf_counter stand-in that only moves when a candidate 'runs': the harness's logic
    (alternation, per-round medians, ratios) is then checked exactly, whatever the machine load."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def candidate(self, name, seconds, log):
        def run():
            log.append(name)
            self.now += seconds
        return run


def test_compare_alternates_and_reports_ratio_with_spread(monkeypatch):
    clock, order = FakeClock(), []
    monkeypatch.setattr(time, "perf_counter", clock)
    candidates = {"slow": clock.candidate("slow", 2.0 ** -8, order), "fast": clock.candidate("fast", 2.0 ** -10, order)}  # exact in binary
    result = compare(candidates, rounds=3, calls=3, settle_seconds=0.2)
    assert set(result.times) == {"slow", "fast"} and all(len(t) == 3 for t in result.times.values())
    assert result.ratio("slow", "fast") == Ratio(4.0, 4.0, 4.0)
    assert result.median_time("fast") == 2.0 ** -10
    # the timed rounds (the last 3 x 2 x 3 calls) alternate, and the order rotates between rounds
    timed = order[-18:]
    assert [timed[i * 6] for i in range(3)] == ["slow", "fast", "slow"]
    assert all(len(set(timed[i * 3:i * 3 + 3])) == 1 for i in range(6))


def test_ratio_is_per_round():
    c = Comparison({"a": [2.0, 4.0, 3.0], "b": [1.0, 1.0, 3.0]})
    assert c.ratio("a", "b") == Ratio(2.0, 1.0, 4.0)
    assert str(c.ratio("a", "b")) == "2.00 (1.00-4.00)"


@pytest.mark.parametrize("kwargs", [{"rounds": 2}, {"calls": 0}])
def test_compare_rejects_unfair_settings(kwargs):
    with pytest.raises(ValueError):
        compare({"a": _sleeper(0)}, **kwargs)


def test_geomean_and_machine_line():
    assert geomean([1.0, 4.0]) == pytest.approx(2.0)
    assert "threads" in machine_line(2)
