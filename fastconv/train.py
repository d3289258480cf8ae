"""Training loop (fit) and evaluation (accuracy, confusion matrix) for fastconv.nn models."""
from __future__ import annotations

import contextlib
import time

import numpy as np

from fastconv.data.loader import DataLoader
from fastconv.nn import CrossEntropyLoss, no_grad
from fastconv.device import check_device, to_device, to_host


@contextlib.contextmanager
def limit_blas_threads(n):
    """Limit numpy's BLAS thread pool to n threads for the duration of the block (restored after).

    Why: the dense layers' small matmuls run between fastconv's kernel calls; OpenBLAS's own
    threads spin after each matmul and fight fastconv's pool for the same cores, so an epoch of
    LeNet-5 took 2.6-3.8 s instead of 0.8 s. One BLAS thread is the right choice for LeNet-sized
    layers; pass n=None to leave it alone. threadpoolctl is a dependency for this."""
    if n is None:
        yield
        return
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=n, user_api="blas"):
        yield


def _loader(data, batch_size, shuffle, seed=0):
    if isinstance(data, DataLoader):
        return data
    try:
        images, labels = data
    except (TypeError, ValueError):
        raise TypeError("data must be a DataLoader or an (images, labels) pair") from None
    return DataLoader(images, labels, batch_size, shuffle=shuffle, seed=seed)


def _progress(iterable, total, desc, enabled):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm
    return tqdm(iterable, total=total, desc=desc, leave=True, dynamic_ncols=True)


def _batch_mover(device):
    """Identity for 'cpu'; for 'cuda' one host->device copy of each batch array."""
    if device is None or check_device(device) == "cpu":
        return lambda a: a
    return to_device


def evaluate(model, data, batch_size=256, num_classes=None, loss=None, blas_threads=1, device=None):
    """{'accuracy', 'loss', 'confusion' (true x predicted counts), 'n'} in eval mode; the
    model's previous train/eval mode is restored afterwards. device='cuda' copies each batch
    to the device (the model must already be there: model.to('cuda')); the logits and the
    loss value come back to the host once per batch for the statistics."""
    was_training = model.training
    model.eval()
    loader = _loader(data, batch_size, shuffle=False)
    loss = loss or CrossEntropyLoss()
    preds, targets, total = [], [], 0.0
    move = _batch_mover(device)
    try:
        with limit_blas_threads(blas_threads), no_grad():  # nothing is kept for a backward
            for x, y in loader:
                logits = model.forward(move(x))
                total += loss(logits, move(y)) * len(y)
                preds.append(to_host(logits).argmax(axis=1))
                targets.append(y)
    finally:
        model.train(was_training)
    pred, true = np.concatenate(preds), np.concatenate(targets)
    k = num_classes or int(max(pred.max(), true.max()) + 1)
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (true, pred), 1)
    return {"accuracy": float((pred == true).mean()), "loss": total / len(true), "confusion": confusion,
            "n": int(len(true))}


def fit(model, data, epochs, batch_size=64, optimizer=None, augment=None, val_data=None, progress=True,
        loss=None, scheduler=None, seed=0, on_epoch_end=None, blas_threads=1, device=None):
    """Train model on data ((images, labels) or a DataLoader) for epochs; returns the history
    {'loss', 'accuracy', 'val_accuracy', 'val_loss', 'seconds', 'images_per_s', 'lr'} (one
    entry per epoch). augment(batch) -> batch is applied to every training batch, fresh each
    iteration. scheduler.step() runs after each epoch; on_epoch_end(epoch, stats) after that.
    blas_threads limits numpy's BLAS pool during training (see limit_blas_threads(); None: no limit).

    device='cuda' trains on the GPU: the model is moved there (model.to('cuda'); it stays there
    afterwards), each batch is loaded and augmented on the host and copied to the device once,
    and forward, backward and the optimizer step run on the device. Per step, the loss value
    and the (N, classes) logits are copied back to the host for the running loss/accuracy:
    the only device->host traffic. device=None or 'cpu': unchanged host training."""
    if device is not None and check_device(device) == "cuda":
        model.to("cuda")
    with limit_blas_threads(blas_threads):
        return _fit(model, data, epochs, batch_size, optimizer, augment, val_data, progress, loss, scheduler,
                    seed, on_epoch_end, device)


def _fit(model, data, epochs, batch_size, optimizer, augment, val_data, progress, loss, scheduler, seed,
         on_epoch_end, device=None):
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if optimizer is None:
        raise ValueError("fit needs an optimizer, e.g. fastconv.nn.SGD(model.parameters(), lr=0.05, momentum=0.9)")
    loader = _loader(data, batch_size, shuffle=True, seed=seed)
    loss = loss or CrossEntropyLoss()
    keys = ("loss", "accuracy", "val_loss", "val_accuracy", "seconds", "images_per_s", "lr")
    history = {k: [] for k in keys}
    move = _batch_mover(device)
    for epoch in range(epochs):
        model.train()
        seen = correct = 0
        running = 0.0
        t0 = time.perf_counter()
        bar = _progress(loader, len(loader), f"epoch {epoch + 1}/{epochs}", progress)
        for x, y in bar:
            if augment is not None:
                x = augment(x)
            logits = model.forward(move(x))
            running += loss(logits, move(y)) * len(y)
            model.zero_grad()
            model.backward(loss.backward(), need_input_grad=False)
            optimizer.step()
            correct += int((to_host(logits).argmax(axis=1) == y).sum())
            seen += len(y)
            if progress:
                bar.set_postfix(loss=f"{running / seen:.4f}", acc=f"{correct / seen:.4f}",
                                img_s=f"{seen / (time.perf_counter() - t0):.0f}", refresh=False)
        seconds = time.perf_counter() - t0
        stats = {"loss": running / seen, "accuracy": correct / seen, "seconds": seconds,
                 "images_per_s": seen / seconds, "lr": optimizer.lr, "val_loss": None, "val_accuracy": None}
        if val_data is not None:
            ev = evaluate(model, val_data, loss=loss, device=device)
            stats["val_loss"], stats["val_accuracy"] = ev["loss"], ev["accuracy"]
            if progress:
                bar.write(f"epoch {epoch + 1}: val_accuracy {ev['accuracy']:.4f}")
        for k in keys:
            history[k].append(stats[k])
        if scheduler is not None:
            scheduler.step()
        if on_epoch_end is not None:
            on_epoch_end(epoch, stats)
    return history
