"""Hypothesis byte fuzzing of the file readers, the in-suite twin of the atheris harnesses in
fuzz/ (which need `pip install atheris` and run longer, see fuzz/run.sh): valid seed files
(fuzz/corpus) with bytes flipped, inserted, deleted or cut off. Each reader returns what the
file holds or raises ValueError naming the file, never another exception type."""
from pathlib import Path

import numpy as np
import pytest
from hypothesis import strategies as st

import fastconv
from fastconv.data import load_image, read_idx
from fuzzing import DEPTHS, run_property

CORPUS = Path(__file__).resolve().parents[1] / "fuzz" / "corpus"


def seeds(target):
    """The seed files of fuzz/corpus/<target> without their harness-selector first byte."""
    files = sorted((CORPUS / target).iterdir())
    assert files, f"empty seed corpus {CORPUS / target}"
    return [(f.name, f.read_bytes()[1:]) for f in files]


def mutated(data, seed_files):
    """One seed file with a few random byte edits."""
    name, raw = data.draw(st.sampled_from(seed_files), label="seed file")
    raw = bytearray(raw)
    for _ in range(data.draw(st.integers(0, 4), label="edits")):
        kind = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]), label="edit")
        at = data.draw(st.integers(0, max(len(raw) - 1, 0)), label="position")
        if kind == "flip" and raw:
            raw[at] = data.draw(st.integers(0, 255), label="byte")
        elif kind == "insert":
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=8), label="inserted")
        elif kind == "delete":
            del raw[at:at + data.draw(st.integers(1, 8), label="deleted")]
        else:
            del raw[at:]
    return name, bytes(raw)


def fuzz_reader(tmp_path, target, examples, read, check):
    seed_files = seeds(target)

    def prop(data):
        name, raw = mutated(data, seed_files)
        path = tmp_path / name
        path.write_bytes(raw)
        try:
            result = read(path)
        except ValueError as e:
            assert str(path) in str(e), e
            return
        check(result)
    run_property(prop, examples)


@pytest.mark.parametrize("examples", DEPTHS)
def test_mutated_idx_files(tmp_path, examples):
    def read(path):
        return read_idx(path, 3 if path.name.startswith("images") else 1)

    fuzz_reader(tmp_path, "idx", examples, read, lambda a: a.dtype == np.uint8 or pytest.fail(str(a.dtype)))


@pytest.mark.parametrize("examples", DEPTHS)
def test_mutated_weight_files(tmp_path, examples):
    def check(state):
        assert all(a.dtype in (np.float32, np.float64) for a in state.values())

    fuzz_reader(tmp_path, "weights", examples, fastconv.load, check)


@pytest.mark.parametrize("examples", DEPTHS)
def test_mutated_images(tmp_path, examples):
    def check(arr):
        assert arr.dtype == np.float32 and arr.ndim == 3 and 0 <= arr.min() and arr.max() <= 1

    fuzz_reader(tmp_path, "image", examples, load_image, check)
