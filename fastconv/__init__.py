"""fastconv: compiled CPU (C++ SIMD, own thread pool) and Numba CUDA kernels for convolutional
networks, with a torch.nn.functional-compatible API (see fastconv.functional)."""
from fastconv._runtime import capabilities, get_num_threads, set_isa, set_num_threads, use_isa
from fastconv import functional, reference
from fastconv.serialize import load, load_into, save

__version__ = "0.1.0"

__all__ = ["capabilities", "functional", "get_num_threads", "load", "load_into", "save", "reference", "set_isa",
           "set_num_threads", "use_isa", "__version__"]
