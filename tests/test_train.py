"""End-to-end training: LeNet-5 on real MNIST (8,000 train / 2,000 held out) and on the
embedded digits, the augment hook, flat memory across epochs (the CLI: test_cli.py)."""

import numpy as np
import pytest

from fastconv import data, models, nn
from fastconv.train import evaluate, fit




MEAN, STD = 0.1307, 0.3081


def test_lenet5_learns_mnist(mnist_dir):
    """2 epochs of Adam + cosine on the first 8,000 test-set images; ~97.5-98% on the last 2,000."""
    x, y = data.mnist(mnist_dir, "test", pad=2)
    train = data.DataLoader(x[:8000], y[:8000], batch_size=64, seed=0, mean=MEAN, std=STD)
    held = data.DataLoader(x[8000:], y[8000:], batch_size=500, shuffle=False, mean=MEAN, std=STD)
    model = models.lenet5("relu", "max", seed=0)
    opt = nn.Adam(model.parameters(), lr=2e-3)
    hist = fit(model, train, epochs=2, optimizer=opt, scheduler=nn.CosineAnnealingLR(opt, 2), progress=False)
    assert hist["loss"][1] < hist["loss"][0]
    ev = evaluate(model, held, num_classes=10)
    assert ev["n"] == 2000 and ev["confusion"].sum() == 2000
    assert np.trace(ev["confusion"]) == round(ev["accuracy"] * 2000)
    assert ev["accuracy"] >= 0.965, ev["accuracy"]


def test_lenet5_learns_digits_and_hooks():
    tr, te = data.digits(split="train"), data.digits(split="test")
    calls = []

    def augment(batch):  # records each call; a 1-pixel shift as the "augmentation"
        assert batch.dtype == np.float32 and batch.ndim == 4
        calls.append(batch.shape[0])
        return np.roll(batch, 1, axis=3) if len(calls) % 2 else batch

    model = models.lenet5("relu", "max", seed=0)
    opt = nn.Adam(model.parameters(), lr=3e-3)
    seen = []
    hist = fit(model, tr, epochs=8, batch_size=32, optimizer=opt, augment=augment, val_data=te,
               scheduler=nn.CosineAnnealingLR(opt, 8), progress=False,
               on_epoch_end=lambda e, s: seen.append(e))
    assert seen == list(range(8)) and len(hist["val_accuracy"]) == 8
    assert len(calls) == 8 * -(-len(tr[1]) // 32) and sum(calls) == 8 * len(tr[1])
    assert hist["lr"][0] == 3e-3 and hist["lr"][-1] < 3e-4  # cosine schedule applied per epoch
    assert hist["val_accuracy"][-1] >= 0.95, hist["val_accuracy"]
    assert model.training  # evaluate restored the mode


def test_training_memory_is_flat_across_epochs():
    """Nothing accumulates from epoch to epoch (activations, gradients or batches kept alive).
    Measured as the bytes Python and numpy hold (tracemalloc, which numpy reports its buffers
    to), not RSS, which moves with the allocator's caching and returning of pages: every epoch
    runs the same steps, so what it holds at its end differs only by the history's few entries
    (~15 KB here), where keeping one batch per step would add 12 x 200 KB."""
    import tracemalloc
    x, y = data.digits()
    model = models.lenet5("tanh", "avg", seed=0)
    held = []
    tracemalloc.start()
    try:
        fit(model, (x[:600], y[:600]), epochs=4, batch_size=50, optimizer=nn.SGD(model.parameters(), 0.05, 0.9),
            progress=False, on_epoch_end=lambda e, s: held.append(tracemalloc.get_traced_memory()[0]))
    finally:
        tracemalloc.stop()
    growth = np.diff(held[1:])  # the first epoch allocates the optimizer's state and caches
    assert np.all(growth < 100_000), held


def test_fit_rejects_bad_arguments():
    model = models.lenet5()
    x, y = np.zeros((4, 1, 32, 32), np.float32), np.zeros(4, np.int64)
    with pytest.raises(ValueError, match="optimizer"):
        fit(model, (x, y), 1)
    with pytest.raises(ValueError, match="epochs"):
        fit(model, (x, y), 0, optimizer=nn.SGD(model.parameters(), 0.1))
    with pytest.raises(TypeError, match="data"):
        fit(model, x, 1, optimizer=nn.SGD(model.parameters(), 0.1))

