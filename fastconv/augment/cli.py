"""`fastconv augment IMAGE --out grid.png`: one image under each augmentation, as a PNG grid.
Registered in fastconv/cli.py's SUBCOMMANDS as (add_augment_command, run_augment_command)."""
from __future__ import annotations


def add_augment_command(subparsers):
    p = subparsers.add_parser("augment", help="draw an image under each augmentation as a grid (PNG)")
    p.add_argument("image", help="an image file (anything Pillow reads)")
    p.add_argument("--out", default="augment_grid.png", help="output PNG (default: augment_grid.png)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random transforms")
    p.add_argument("--columns", type=int, default=4)
    return p


def run_augment_command(args):
    from fastconv.augment.grid import draw_grid
    print(draw_grid(args.image, args.out, seed=args.seed, columns=args.columns))
    return 0
