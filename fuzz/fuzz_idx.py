"""atheris harness: fastconv.data.read_idx (MNIST IDX files, plain or gzipped) on arbitrary bytes.
Contract: the uint8 array the header declares, or ValueError naming the file."""
import atheris

with atheris.instrument_imports(include=["fastconv"]):
    from fastconv.data import read_idx

from _harness import main, temp_file


def test_one_input(data: bytes):
    if not data:
        return
    suffix = ".gz" if data[0] & 1 else ""   # the first byte picks the container
    ndim = 3 if data[0] & 2 else 1
    path = temp_file(data[1:], "-idx" + suffix)
    try:
        arr = read_idx(path, ndim)
    except ValueError as e:
        assert path in str(e), e
        return
    assert arr.dtype.name == "uint8" and arr.ndim == ndim


if __name__ == "__main__":
    main(test_one_input)
