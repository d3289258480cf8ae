"""`fastconv train`: train one of the named models with on-the-fly augmentation and save its
weights. train_model() is also the demo's training step."""
from __future__ import annotations

import time

from fastconv.commands.common import (MODEL_HELP, MODELS, UserError, add_command, add_runtime_options,
                                      build_model, load_data, require_usable_device, save_model, set_threads)

EXAMPLE = """  fastconv train --epochs 10 --save lenet.safetensors
  fastconv train --data mnist --data-dir tests/data/mnist --model vgg-small --save vgg.safetensors"""

# Adam learning rates that train each model well in a few epochs (cosine-annealed to zero)
DEFAULT_LR = {"lenet5": 3e-3, "lenet5-classic": 3e-3, "vgg-small": 2e-3}


def add_training_options(p):
    p.add_argument("--data", choices=["digits", "mnist"], default="digits",
                   help="digits: bundled 8x8 digits (default, no download); mnist: IDX files in --data-dir")
    p.add_argument("--data-dir", "--root", dest="data_dir", default=None, help="folder with the MNIST IDX files")
    p.add_argument("--model", choices=list(MODELS), default="lenet5", help=MODEL_HELP)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: per model)")
    p.add_argument("--no-augment", action="store_true", help="train without on-the-fly augmentation")
    p.add_argument("--limit", type=int, default=None, help="train on at most this many images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    add_runtime_options(p)


def add_train_command(subparsers, parents):
    p = add_command(subparsers, "train", parents, "train a model with on-the-fly augmentation, evaluate it, "
                    "save its weights", EXAMPLE)
    add_training_options(p)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--save", default=None, help="write the weights here (.safetensors, or .npz)")
    return p


def check_training_args(args):
    if args.epochs < 1:
        raise UserError(f"--epochs must be >= 1, got {args.epochs}")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be >= 1, got {args.limit}")


def train_model(args, log=print):
    """Build, train and evaluate args.model on args.data. Returns a dict with the model, the
    data, the fit() history, the test evaluation and the seconds each step took."""
    from fastconv import nn
    from fastconv.augment import presets
    from fastconv.train import evaluate, fit
    check_training_args(args)
    threads = set_threads(args.threads)
    device = require_usable_device(args.device)
    train, test, description = load_data(args.data, args.data_dir, args.seed)
    if args.limit is not None:
        train = (train[0][:args.limit], train[1][:args.limit])
    model = build_model(args.model, args.seed)
    lr = args.lr or DEFAULT_LR[args.model]
    opt = nn.Adam(model.parameters(), lr=lr)
    augment = None if args.no_augment else presets.digit_augmentation(args.seed)
    log(f"training {args.model} for {args.epochs} epochs on {description} "
        f"({threads} threads, {device}{', augmented' if augment else ''})")
    t0 = time.perf_counter()
    history = fit(model, train, args.epochs, args.batch_size, opt, augment=augment, progress=not args.no_progress,
                  scheduler=nn.CosineAnnealingLR(opt, args.epochs), seed=args.seed, device=device)
    t1 = time.perf_counter()
    evaluation = evaluate(model, test, num_classes=10, device=device)
    t2 = time.perf_counter()
    if device == "cuda":
        model.to("cpu")  # interpretation, pictures and saving work on host arrays
    log(f"test accuracy {evaluation['accuracy']:.4f} on {evaluation['n']} images "
        f"(training {t1 - t0:.1f} s, evaluation {t2 - t1:.1f} s)")
    return {"model": model, "train": train, "test": test, "data_description": description, "history": history,
            "evaluation": evaluation, "threads": threads, "device": device, "lr": lr,
            "seconds": {"train": t1 - t0, "evaluate": t2 - t1}}


def run_train_command(args):
    result = train_model(args)
    if args.save:
        print(f"saved weights to {save_model(result['model'], args.model, args.save)}")
    return 0
