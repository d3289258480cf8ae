"""The lecture's worked example: a 6x6 image convolved twice with a 3x3 kernel."""
import numpy as np

import fastconv
import fastconv.functional as F

image = np.array([[3, 3, 5, 1, 2, 3], [3, 4, 0, 1, 4, 5], [5, 1, 2, 3, 2, 0],
                  [5, 0, 4, 5, 2, 1], [3, 4, 3, 1, 0, 2], [2, 0, 4, 3, 5, 1]], np.float32)
kernel = np.array([[0, 1, 0], [-1, 2, -1], [0, 1, 0]], np.float32)

once = F.conv2d(image[None, None], kernel[None, None])
twice = F.conv2d(once, kernel[None, None])
print("capabilities:", fastconv.capabilities())
print("conv once:\n", once[0, 0])
print("conv twice (each pixel sees a 5x5 input window):\n", twice[0, 0])
