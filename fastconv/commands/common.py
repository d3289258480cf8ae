"""What several commands share: the named models, the data sets, weights files, threads and
device, each checked so that a user's mistake becomes one UserError line (see fastconv/cli.py)."""
from __future__ import annotations

import os


class UserError(Exception):
    """A mistake on the command line (a missing file, a name out of range): printed as one line."""


# Small VGG for 1x32x32 digits: three blocks (16, 32, 64 channels), 4x4x64 -> 128 -> 128 -> 10.
VGG_SMALL = ((1, 16, 1), (16, 32, 1), (32, 64, 2))


def _lenet5(seed):
    from fastconv import models
    return models.lenet5("relu", "max", seed=seed)


def _lenet5_classic(seed):
    from fastconv import models
    return models.lenet5("sigmoid", "avg", seed=seed)


def _vgg_small(seed):
    from fastconv import models
    return models.vgg(VGG_SMALL, num_classes=10, input_size=32, hidden=128, dropout=0.3, seed=seed)


# name -> builder(seed) of a net taking (N, 1, 32, 32) images in [0, 1] and giving 10 logits
MODELS = {"lenet5": _lenet5, "lenet5-classic": _lenet5_classic, "vgg-small": _vgg_small}
MODEL_HELP = "lenet5 (ReLU, max-pool), lenet5-classic (sigmoid, average subsampling), vgg-small (3x3 convs)"


def build_model(name, seed=0):
    if name not in MODELS:
        raise UserError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name](seed)


def save_model(model, name, path):
    """Weights (safetensors, or .npz) with the model's name in the safetensors header."""
    from fastconv import save
    return save(model, path, metadata={"model": name})


def _stored_model_name(path):
    if str(path).endswith(".npz"):
        return None
    from safetensors import safe_open
    with safe_open(path, "np") as f:
        return (f.metadata() or {}).get("model")


def _names_matching_shapes(state):
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    return [name for name, build in MODELS.items()
            if {k: tuple(v.shape) for k, v in build(0).state_dict().items()} == shapes]


def load_model(path, name=None):
    """(model name, model with the weights at path loaded). The name comes from `name`, else
    from the file's header, else from the one model whose parameter shapes the file matches."""
    from fastconv import load
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such weights file")
    try:
        state = load(path)
        stored = _stored_model_name(path)
    except Exception as e:  # safetensors' own error types: a damaged or foreign file
        raise UserError(f"{path}: not a readable weights file ({e})") from e
    if name is None:
        candidates = [stored] if stored in MODELS else _names_matching_shapes(state)
        if len(candidates) != 1:
            raise UserError(f"{path}: cannot tell which model these weights are for "
                            f"({'matches ' + ', '.join(candidates) if candidates else 'matches no model'}); "
                            f"pass --model, one of {', '.join(MODELS)}")
        name = candidates[0]
    model = build_model(name)
    try:
        model.load_state_dict(state)
    except ValueError:
        what = f"for {stored}" if stored else "for another model"
        raise UserError(f"{path} holds weights {what}, not {name}") from None
    model.eval()
    return name, model


def load_data(name, data_dir=None, seed=0):
    """(train (images, labels), test (images, labels), one-line description); images are
    float32 (N, 1, 32, 32) in [0, 1].

    digits: the bundled 8x8 digits upscaled to 32x32, a seeded 80/20 split.
    mnist: the IDX files in data_dir; the train split when it is there, else (as in
    the repository's tests/data/mnist, which holds only the 10,000 test images) the test split's first
    8,000 images to train and its last 2,000 to test."""
    from fastconv import data
    if name == "digits":
        train, test = data.digits(split="train", seed=seed), data.digits(split="test", seed=seed)
        return train, test, (f"the bundled UCI 8x8 digits upscaled to 32x32: {len(train[1])} to train, "
                             f"{len(test[1])} to test")
    if name != "mnist":
        raise UserError(f"unknown data set {name!r}; choose digits or mnist")
    if data_dir is None:
        raise UserError("--data mnist needs --data-dir PATH, the folder with the MNIST IDX files")
    if not os.path.isdir(data_dir):
        raise UserError(f"{data_dir}: no such folder (--data-dir)")

    def has(split_file):
        return any(os.path.isfile(os.path.join(data_dir, split_file + s)) for s in ("", ".gz"))

    if not has("t10k-images-idx3-ubyte"):
        raise UserError(f"{data_dir}: no t10k-images-idx3-ubyte[.gz] (the MNIST test images) here")
    test = data.mnist(data_dir, "test", dtype="float32", pad=2)
    if has("train-images-idx3-ubyte"):
        train = data.mnist(data_dir, "train", dtype="float32", pad=2)
        return train, test, f"MNIST from {data_dir}: {len(train[1])} to train, {len(test[1])} to test"
    n_train = len(test[1]) * 4 // 5
    train, test = (test[0][:n_train], test[1][:n_train]), (test[0][n_train:], test[1][n_train:])
    return train, test, (f"MNIST's test split from {data_dir} (no train split there): first {n_train} "
                         f"to train, last {len(test[1])} to test")


def set_threads(threads):
    import fastconv
    if threads is not None:
        if threads < 1:
            raise UserError(f"--threads must be >= 1, got {threads}")
        fastconv.set_num_threads(threads)
    return fastconv.get_num_threads()


def require_usable_device(device):
    """'cpu' or 'cuda' once a real GPU is there (Numba's simulator does not count: it would
    take hours); otherwise a UserError saying what is missing."""
    if device == "cpu":
        return device
    try:
        import numba  # noqa: F401
    except ImportError:
        raise UserError("--device cuda needs numba and numba-cuda: pip install 'fastconv[cuda]'") from None
    from fastconv.cuda import device_info
    info = device_info()
    if info is None or info.get("simulator"):
        raise UserError("--device cuda: no CUDA device found" + (" (only Numba's simulator)" if info else "")
                        + "; use --device cpu")
    return device


def add_command(subparsers, name, parents, summary, example):
    """A subcommand's parser whose --help ends with a working example (kept as written)."""
    import argparse
    return subparsers.add_parser(name, parents=parents, help=summary, description=summary,
                                 epilog="example:\n" + example, formatter_class=argparse.RawDescriptionHelpFormatter)


def add_runtime_options(parser):
    parser.add_argument("--threads", type=int, default=None, help="kernel threads (default: all cores)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")

