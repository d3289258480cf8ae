"""`fastconv augment IMAGE --out grid.png`: for the lead to register in fastconv/cli.py with
add_augment_command(subparsers)."""
from __future__ import annotations


def add_augment_command(subparsers):
    p = subparsers.add_parser("augment", help="draw an image under each augmentation as a grid (PNG)")
    p.add_argument("image", help="an image file (anything Pillow reads)")
    p.add_argument("--out", default="augment_grid.png", help="output PNG (default: augment_grid.png)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random transforms")
    p.add_argument("--columns", type=int, default=4)
    p.set_defaults(func=_run)
    return p


def _run(args):
    from fastconv.augment.grid import draw_grid
    print(draw_grid(args.image, args.out, seed=args.seed, columns=args.columns))
    return 0
