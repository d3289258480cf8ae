"""atheris harness: fastconv.data.load_image (the CLI's door for user images) on arbitrary bytes.
Contract: a float32 (C, H, W) array in [0, 1], or ValueError naming the file."""
import atheris
import numpy as np

with atheris.instrument_imports(include=["fastconv"]):
    from fastconv.data import load_image

from _harness import main, temp_file

MODES = (None, "L", "RGB")


def test_one_input(data: bytes):
    if not data:
        return
    path = temp_file(data[1:], ".img")
    mode = MODES[data[0] % 3]
    size = (1 + (data[0] >> 2) % 7, 1 + (data[0] >> 5)) if data[0] & 0x80 else None
    try:
        arr = load_image(path, mode=mode, size=size)
    except ValueError as e:
        assert path in str(e), e
        return
    assert arr.dtype == np.float32 and arr.ndim == 3 and arr.shape[0] in (1, 3)
    assert arr.min() >= 0 and arr.max() <= 1
    if size:
        assert arr.shape[1:] == size


if __name__ == "__main__":
    main(test_one_input)
