#!/usr/bin/env bash
# Incremental in-place build for development: compiles fastconv._C into build/dev and copies
# it into fastconv/, so `PYTHONPATH=. pytest` runs against the checkout. CI uses `pip install .`.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build/dev -G Ninja -DCMAKE_BUILD_TYPE=Release -DFASTCONV_INPLACE=ON \
  -Dpybind11_DIR="$(python3 -m pybind11 --cmakedir)" -DPython_EXECUTABLE="$(command -v python3)" >/dev/null
cmake --build build/dev -j "${JOBS:-2}"
