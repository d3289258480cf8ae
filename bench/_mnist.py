"""Where the benchmarks read MNIST: $FASTCONV_MNIST_DIR, else the test split shipped in tests/data/mnist."""
import os
from pathlib import Path

SHIPPED = Path(__file__).resolve().parents[1] / "tests" / "data" / "mnist"


def mnist_dir():
    return os.environ.get("FASTCONV_MNIST_DIR") or str(SHIPPED)
