"""fastconv.timing: the harness behind every ratio fastconv prints."""
import time

import pytest

from fastconv.timing import Comparison, Ratio, compare, geomean, machine_line


def _sleeper(seconds):
    return lambda: time.sleep(seconds)


def test_compare_alternates_and_reports_ratio_with_spread():
    order = []
    candidates = {"slow": lambda: (order.append("slow"), time.sleep(0.004)),
                  "fast": lambda: (order.append("fast"), time.sleep(0.001))}
    result = compare(candidates, rounds=3, calls=3, settle_seconds=0.2)
    assert set(result.times) == {"slow", "fast"} and all(len(t) == 3 for t in result.times.values())
    r = result.ratio("slow", "fast")
    assert r.low <= r.median <= r.high
    assert 2.0 < r.median < 6.0
    # after warm-up, the timed rounds rotate who goes first
    timed = order[-18:]
    firsts = [timed[i * 6] for i in range(3)]
    assert firsts[0] != firsts[1]


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
