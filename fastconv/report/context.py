"""What every report section reads: the trained model, its data, where to write, and a timer."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np


@dataclass
class ReportContext:
    out_dir: str
    model_name: str
    model: object                 # a trained fastconv.nn.Sequential, on the host, in eval mode
    train: tuple                  # (images (N, 1, 32, 32) float32 in [0, 1], labels (N,) int64)
    test: tuple
    data_description: str
    history: dict                 # fastconv.train.fit's history
    evaluation: dict              # fastconv.train.evaluate on the test set
    threads: int
    photo: str                    # the image for the Sobel example (the user's, or the bundled one)
    seed: int = 0
    quick: bool = False           # --epochs 1: fewer optimisation steps in the pictures too
    benchmark: Optional[dict] = None
    seconds: Dict[str, float] = field(default_factory=dict)
    _probabilities: Optional[np.ndarray] = field(default=None, init=False, repr=False)

    def path(self, name):
        """Where a file named `name` goes (beside index.html)."""
        return os.path.join(self.out_dir, name)

    def probabilities(self):
        """Softmax output for every test image (batched forward passes, cached)."""
        if self._probabilities is None:
            n = len(self.test[1])
            self._probabilities = np.concatenate([self.model.predict_proba(self.test[0][i:i + 256])
                                                  for i in range(0, n, 256)])
        return self._probabilities

    def timed(self, key, fn, *args):
        t0 = time.perf_counter()
        result = fn(*args)
        self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - t0
        return result
