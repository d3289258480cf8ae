"""atheris harness: argument validation of fastconv.functional (conv2d and its gradients,
pooling, dense ops) with arbitrary argument values and types on small arrays.
Contract: a result, or ValueError / TypeError / MemoryError; never a crash, a hang or another
exception type. The address space is capped at 4 GiB so that an oversized request fails as
MemoryError instead of being granted by overcommit."""
import resource

import atheris
import numpy as np

with atheris.instrument_imports(include=["fastconv"]):
    import fastconv.functional as F

from _harness import assert_raised_by_fastconv, main

resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
REJECTED = (ValueError, TypeError, MemoryError)
DTYPES = [np.float32, np.float64, np.float16, np.int32, np.uint8, np.complex64, np.bool_]


def any_value(fdp):
    """An argument value of any plausible (or implausible) kind."""
    kind = fdp.ConsumeIntInRange(0, 9)
    if kind <= 3:
        return fdp.ConsumeIntInRange(-2, 4)
    if kind == 4:
        return fdp.ConsumeInt(8)  # up to +-2^63
    if kind == 5:
        return (fdp.ConsumeIntInRange(-1, 4), fdp.ConsumeIntInRange(-1, 4))
    if kind == 6:
        return fdp.ConsumeRegularFloat()
    if kind == 7:
        return fdp.PickValueInList(["same", "valid", "full", "", None, True, (), (1, 2, 3)])
    if kind == 8:
        return [fdp.ConsumeIntInRange(0, 3)] * fdp.ConsumeIntInRange(0, 3)
    return fdp.ConsumeBool()


def array(fdp, ndim):
    shape = tuple(fdp.ConsumeIntInRange(0, 6) for _ in range(ndim))
    dtype = fdp.PickValueInList(DTYPES)
    a = np.asarray(np.random.default_rng(fdp.ConsumeIntInRange(0, 99)).standard_normal(shape)).astype(dtype)
    if fdp.ConsumeBool() and a.ndim >= 2:
        a = a.swapaxes(-1, -2)
    if fdp.ConsumeIntInRange(0, 7) == 0:  # a zero-stride view with a huge leading dimension
        a = np.broadcast_to(a.reshape(-1)[:1] if a.size else np.zeros(1, dtype),
                            (fdp.ConsumeIntInRange(1, 1 << 40),) + tuple(max(d, 1) for d in shape[1:]))
    return a


def call(fdp):
    op = fdp.ConsumeIntInRange(0, 7)
    x = array(fdp, fdp.PickValueInList([4, 4, 4, 3, 2]))
    if op == 0:
        w = array(fdp, 4)
        return F.conv2d(x, w, None, any_value(fdp), any_value(fdp), any_value(fdp), any_value(fdp),
                        algorithm=fdp.PickValueInList(["auto", "direct", "winograd", "winograd_f4", "fft"]))
    if op == 1:
        w, dy = array(fdp, 4), array(fdp, 4)
        return F.conv2d_input(tuple(x.shape), w, dy, any_value(fdp), any_value(fdp), any_value(fdp), any_value(fdp))
    if op == 2:
        dy = array(fdp, 4)
        return F.conv2d_weight(x, any_value(fdp), dy, any_value(fdp), any_value(fdp))
    if op == 3:
        return F.max_pool2d(x, any_value(fdp), any_value(fdp), any_value(fdp), any_value(fdp), fdp.ConsumeBool(),
                            return_indices=True)
    if op == 4:
        return F.avg_pool2d(x, any_value(fdp), any_value(fdp), any_value(fdp), fdp.ConsumeBool(), fdp.ConsumeBool(),
                            any_value(fdp))
    if op == 5:
        y, idx = F.max_pool2d(x, 2, return_indices=True)
        return F.max_pool2d_backward(y, idx + fdp.ConsumeIntInRange(-3, 3), any_value(fdp))
    if op == 6:
        return F.linear(x, array(fdp, 2), array(fdp, 1) if fdp.ConsumeBool() else None)
    return F.cross_entropy(x, np.asarray([fdp.ConsumeIntInRange(-1, 6)] * fdp.ConsumeIntInRange(0, 6)),
                           fdp.PickValueInList(["mean", "sum", "none", "max"]), fdp.ConsumeRegularFloat())


def test_one_input(data: bytes):
    fdp = atheris.FuzzedDataProvider(data)
    try:
        call(fdp)
    except REJECTED as e:
        assert_raised_by_fastconv(e)


if __name__ == "__main__":
    main(test_one_input)
