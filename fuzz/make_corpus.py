"""Writes the seed corpus (fuzz/corpus/<target>/): a few small valid files per target, with the
first byte each harness reads as its selector. Rerun after changing a harness's input format."""
import gzip
import io
import json
import struct
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fastconv  # noqa: E402

CORPUS = Path(__file__).resolve().parent / "corpus"


def write(target, name, data):
    (CORPUS / target).mkdir(parents=True, exist_ok=True)
    (CORPUS / target / name).write_bytes(data)


def idx(dims, magic):
    return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims) + bytes(np.prod(dims))


def main():
    rng = np.random.default_rng(0)
    # fuzz_idx: bit 0 of the selector = gzipped, bit 1 = 3-D images (else 1-D labels)
    write("idx", "labels", b"\x00" + idx((5,), 0x801))
    write("idx", "images", b"\x02" + idx((2, 3, 4), 0x803))
    write("idx", "images.gz", b"\x03" + gzip.compress(idx((1, 28, 28), 0x803), mtime=0))
    # fuzz_weights: bit 0 = .npz (else .safetensors)
    state = {"conv.weight": rng.standard_normal((2, 1, 3, 3)).astype(np.float32), "conv.bias": np.zeros(2)}
    tmp = CORPUS / "tmp.safetensors"
    fastconv.save(state, tmp)
    write("weights", "small.safetensors", b"\x00" + tmp.read_bytes())
    tmp.unlink()
    buf = io.BytesIO()
    np.savez(buf, **state)
    write("weights", "small.npz", b"\x01" + buf.getvalue())
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    write("weights", "minimal.safetensors", b"\x00" + struct.pack("<Q", len(header)) + header + bytes(8))
    # fuzz_image: the selector picks mode and size (see fuzz_image.py)
    from PIL import Image
    for name, img in {"grey.png": Image.fromarray(rng.integers(0, 256, (4, 5), dtype=np.uint8)),
                      "rgb.png": Image.fromarray(rng.integers(0, 256, (3, 4, 3), dtype=np.uint8)),
                      "rgb.jpg": Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)),
                      "palette.gif": Image.fromarray(rng.integers(0, 256, (4, 4), dtype=np.uint8)).convert("P")}.items():
        out = io.BytesIO()
        img.save(out, format={"png": "PNG", "jpg": "JPEG", "gif": "GIF"}[name.rsplit(".", 1)[1]])
        write("image", name, b"\x00" + out.getvalue())
    # fuzz_validation: FuzzedDataProvider input; a few byte patterns to start from
    for i, seed in enumerate([bytes(32), bytes(range(64)), b"\xff" * 48, bytes([1, 2, 3, 4] * 12)]):
        write("validation", f"seed{i}", seed)


if __name__ == "__main__":
    main()
