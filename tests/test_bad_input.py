"""Every class of bad argument gets a ValueError/TypeError that names the argument."""
import numpy as np
import pytest

import fastconv
import fastconv.functional as F

x = np.zeros((2, 4, 8, 8), np.float32)
w = np.zeros((6, 4, 3, 3), np.float32)
dy = np.zeros((2, 6, 6, 6), np.float32)

CASES = [
    # (callable, exception, words the message must contain)
    (lambda: F.conv2d(x[0, 0], w), ValueError, "input"),                                  # wrong ndim
    (lambda: F.conv2d(x, w[0]), ValueError, "weight"),                                     # wrong ndim
    (lambda: F.conv2d(x, np.zeros((6, 3, 3, 3), np.float32)), ValueError, "weight"),       # channel mismatch
    (lambda: F.conv2d(x, w, groups=3), ValueError, "groups"),                              # group mismatch
    (lambda: F.conv2d(x, np.zeros((6, 4, 3, 3), np.float32), groups=2), ValueError, "weight"),
    (lambda: F.conv2d(x, np.zeros((5, 2, 3, 3), np.float32), groups=2), ValueError, "groups"),
    (lambda: F.conv2d(x, np.zeros((6, 4, 9, 9), np.float32)), ValueError, "kernel"),       # kernel > padded input
    (lambda: F.conv2d(x, w, dilation=5), ValueError, "padded input"),
    (lambda: F.conv2d(x, w, stride=0), ValueError, "stride"),
    (lambda: F.conv2d(x, w, stride=(1, -1)), ValueError, "stride"),
    (lambda: F.conv2d(x, w, dilation=0), ValueError, "dilation"),
    (lambda: F.conv2d(x, w, padding=-1), ValueError, "padding"),
    (lambda: F.conv2d(x, w, padding="full"), ValueError, "padding"),
    (lambda: F.conv2d(x, w, stride=2, padding="same"), ValueError, "same"),
    (lambda: F.conv2d(x, w, stride=1.5), TypeError, "stride"),
    (lambda: F.conv2d(np.zeros((2, 0, 8, 8), np.float32), w), ValueError, "empty"),        # empty dims but N
    (lambda: F.conv2d(x.astype(np.int32), w), TypeError, "input"),                         # integer dtype
    (lambda: F.conv2d(x.astype(np.complex64), w), TypeError, "input"),                     # complex dtype
    (lambda: F.conv2d(x.astype(np.float16), w), TypeError, "input"),
    (lambda: F.conv2d(x, w.astype(np.float64)), TypeError, "weight"),                      # dtype mismatch
    (lambda: F.conv2d(x, w, np.zeros(5, np.float32)), ValueError, "bias"),
    (lambda: F.conv2d(x, w, np.zeros(6, np.float64)), TypeError, "bias"),
    (lambda: F.conv2d(x, w, algorithm="fft"), ValueError, "algorithm"),
    (lambda: F.conv2d(x, w, out=np.zeros((2, 6, 6, 5), np.float32)), ValueError, "out"),
    (lambda: F.conv2d("image", w), TypeError, "input"),
    (lambda: F.conv2d_input((2, 4, 8), w, dy), ValueError, "input_size"),
    (lambda: F.conv2d_input((2, 4, 8, 8), w, dy[:, :5]), ValueError, "grad_output"),
    (lambda: F.conv2d_input((2, 4, 8, 8), w, dy.astype(np.float64)), TypeError, "weight"),
    (lambda: F.conv2d_weight(x, (6, 4, 3), dy), ValueError, "weight_size"),
    (lambda: F.conv2d_weight(x, (6, 4, 3, 3), dy[:, :, :5]), ValueError, "grad_output"),
    (lambda: F.max_pool2d(x, 0), ValueError, "kernel_size"),
    (lambda: F.max_pool2d(x, 2, padding=2), ValueError, "padding"),
    (lambda: F.max_pool2d(x, 9), ValueError, "kernel_size"),
    (lambda: F.max_pool2d(x[0, 0], 2), ValueError, "input"),
    (lambda: F.max_pool2d(x.astype(np.int64), 2), TypeError, "input"),
    (lambda: F.max_pool2d_backward(dy, np.zeros((2, 6, 6, 6), np.int32), (2, 6, 12, 12)), TypeError, "indices"),
    (lambda: F.max_pool2d_backward(dy, np.zeros((2, 6, 6, 5), np.int64), (2, 6, 12, 12)), ValueError, "indices"),
    (lambda: F.max_pool2d_backward(dy, np.full((2, 6, 6, 6), 144, np.int64), (2, 6, 12, 12)), ValueError, "indices"),
    (lambda: F.max_pool2d_backward(dy, np.full((2, 6, 6, 6), -1, np.int64), (2, 6, 12, 12)), ValueError, "indices"),
    (lambda: F.max_pool2d_backward(dy, np.zeros((2, 6, 6, 6), np.int64), (2, 5, 12, 12)), ValueError, "input_size"),
    (lambda: F.avg_pool2d(x, 2, divisor_override=0), ValueError, "divisor_override"),
    (lambda: F.avg_pool2d_backward(dy, (2, 6, 12, 12), 3), ValueError, "grad_output"),
    (lambda: F.linear(np.zeros((2, 3), np.float32), np.zeros((4, 5), np.float32)), ValueError, "in_features"),
    (lambda: F.cross_entropy(np.zeros((2, 3), np.float32), np.array([0, 3])), ValueError, "target"),
    (lambda: F.cross_entropy(np.zeros((2, 3), np.float32), np.array([0.0, 1.0])), TypeError, "target"),
    (lambda: F.softmax(np.zeros((2, 3), np.float32), dim=2), ValueError, "dim"),
    (lambda: F.relu_backward(np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float32)), ValueError, "output"),
    (lambda: F.relu_backward(np.zeros(3, np.float32), np.zeros(3, np.float64)), TypeError, "output"),
    (lambda: fastconv.set_num_threads(0), ValueError, "num_threads"),
    (lambda: fastconv.set_isa("sse9"), ValueError, "isa"),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_bad_input_is_named(case):
    fn, exc, words = CASES[case]
    with pytest.raises(exc) as info:
        fn()
    assert words in str(info.value), str(info.value)

