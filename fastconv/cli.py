"""Command line: `fastconv demo` trains LeNet-5 on the embedded digits; `fastconv train` trains
on MNIST. Each subcommand is a (add_parser, run) pair registered in SUBCOMMANDS, so new ones
(augment, bench, visualize) are added without touching the others."""
from __future__ import annotations

import argparse
import sys
import time

from fastconv.augment.cli import add_augment_command, run_augment_command


def _add_demo(sub):
    p = sub.add_parser("demo", help="train LeNet-5 on scikit-learn's embedded 8x8 digits (no download)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (cosine-annealed)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="kernel threads (default: all cores)")
    p.add_argument("--no-progress", action="store_true")
    return p


def _run_demo(args):
    from fastconv import data, models, nn, set_num_threads
    from fastconv.train import evaluate, fit
    if args.threads:
        set_num_threads(args.threads)
    train, test = data.digits(split="train", seed=args.seed), data.digits(split="test", seed=args.seed)
    model = models.lenet5("relu", "max", seed=args.seed)
    opt = nn.Adam(model.parameters(), lr=args.lr)
    print(f"LeNet-5 (ReLU, max-pool) on {len(train[1])} digit images (8x8 resized to 32x32), "
          f"testing on {len(test[1])}")
    t0 = time.perf_counter()
    fit(model, train, args.epochs, args.batch_size, opt, progress=not args.no_progress, seed=args.seed,
        scheduler=nn.CosineAnnealingLR(opt, args.epochs))
    ev = evaluate(model, test)
    print(f"test accuracy {ev['accuracy']:.4f} after {args.epochs} epochs ({time.perf_counter() - t0:.1f} s)")
    return 0


def _add_train(sub):
    p = sub.add_parser("train", help="train a model on MNIST and optionally save its weights")
    p.add_argument("--data", choices=["mnist", "digits"], default="mnist")
    p.add_argument("--root", default=None, help="folder with the MNIST IDX files (default: cache folder)")
    p.add_argument("--download", action="store_true", help="fetch MNIST into --root if missing")
    p.add_argument("--split", choices=["train", "test"], default="train",
                   help="MNIST split; its last --holdout images are held out for validation")
    p.add_argument("--holdout", type=int, default=2000, help="images held out for validation")
    p.add_argument("--limit", type=int, default=None, help="train on at most this many images")
    p.add_argument("--model", choices=["lenet5", "lenet5-classic"], default="lenet5",
                   help="lenet5: ReLU + max-pool; lenet5-classic: sigmoid + average subsampling")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    p.add_argument("--optimizer", choices=["sgd", "adam"], default="adam")
    p.add_argument("--cosine", action="store_true", help="cosine learning-rate schedule")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--save", default=None, help="write weights here (.safetensors or .npz)")
    p.add_argument("--no-progress", action="store_true")
    return p


def _run_train(args):
    from fastconv import data, models, nn, save, set_num_threads
    from fastconv.train import evaluate, fit
    if args.threads:
        set_num_threads(args.threads)
    if args.data == "mnist":
        x, y = data.mnist(args.root, args.split, download=args.download, pad=2)
    else:
        x, y = data.digits()
    if not 0 <= args.holdout < len(y):
        raise SystemExit(f"--holdout must be in [0, {len(y)})")
    n_train = len(y) - args.holdout
    train = (x[:n_train][:args.limit], y[:n_train][:args.limit])
    mean, std = (0.1307, 0.3081) if args.data == "mnist" else (None, None)
    loader = data.DataLoader(*train, batch_size=args.batch_size, seed=args.seed, mean=mean, std=std)
    val = data.DataLoader(x[n_train:], y[n_train:], 256, shuffle=False, mean=mean, std=std) \
        if args.holdout else None
    model = models.lenet5("relu", "max", seed=args.seed) if args.model == "lenet5" \
        else models.lenet5("sigmoid", "avg", seed=args.seed)
    opt = nn.SGD(model.parameters(), lr=args.lr, momentum=args.momentum) if args.optimizer == "sgd" \
        else nn.Adam(model.parameters(), lr=args.lr)
    sched = nn.CosineAnnealingLR(opt, args.epochs) if args.cosine else None
    hist = fit(model, loader, args.epochs, optimizer=opt, val_data=val, progress=not args.no_progress,
               scheduler=sched, seed=args.seed)
    print(f"trained {args.model} on {len(train[1])} images for {args.epochs} epochs "
          f"({sum(hist['seconds']):.1f} s, {hist['images_per_s'][-1]:.0f} images/s in the last epoch)")
    if val is not None:
        ev = evaluate(model, val, num_classes=10)
        print(f"held-out accuracy {ev['accuracy']:.4f} on {ev['n']} images")
    if args.save:
        save(model, args.save)
        print(f"saved weights to {args.save}")
    return 0


# name -> (add_parser(subparsers) -> parser, run(args) -> exit code)
SUBCOMMANDS = {
    "demo": (_add_demo, _run_demo),
    "train": (_add_train, _run_train),
    "augment": (add_augment_command, run_augment_command),
}


def build_parser():
    parser = argparse.ArgumentParser(prog="fastconv", description="compiled-kernel CNNs: demo, training, augmentation pictures")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (add, run) in SUBCOMMANDS.items():
        add(sub).set_defaults(_run=run)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args._run(args)


if __name__ == "__main__":
    sys.exit(main())
