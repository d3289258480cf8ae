"""atheris harness: fastconv.load on arbitrary bytes as a .safetensors or .npz weight file.
Contract: a {name: float32/float64 array} dict, or a ValueError (WeightFileError) naming the file;
never code execution, a leaked safetensors/numpy/zipfile error, or an allocation the file
does not back."""
import atheris

with atheris.instrument_imports(include=["fastconv"]):
    import fastconv
    from fastconv.serialize import WeightFileError

from _harness import main, temp_file


def test_one_input(data: bytes):
    if not data:
        return
    path = temp_file(data[1:], ".npz" if data[0] & 1 else ".safetensors")
    try:
        state = fastconv.load(path)
    except WeightFileError as e:
        assert str(e).startswith(path), e
        return
    for name, arr in state.items():
        assert arr.dtype.name in ("float32", "float64"), (name, arr.dtype)


if __name__ == "__main__":
    main(test_one_input)
