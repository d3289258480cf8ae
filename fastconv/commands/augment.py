"""`fastconv augment IMAGE --out grid.png`: one image under each augmentation, as a PNG grid.
Registered in fastconv/cli.py's SUBCOMMANDS as (add_augment_command, run_augment_command)."""
from __future__ import annotations

from fastconv.commands.common import UserError, add_command

EXAMPLE = """\
  fastconv augment photo.jpg --out grid.png
  fastconv augment photo.jpg --out grid.png --seed 3 --columns 5"""


def add_augment_command(subparsers, parents):
    p = add_command(subparsers, "augment", parents, "draw an image under each augmentation (flips, zoom, "
                    "rotations, affine, crop, blur, colour, noise) as a labelled PNG grid", EXAMPLE)
    p.add_argument("image", help="an image file (anything Pillow reads)")
    p.add_argument("--out", default="augment_grid.png", help="output PNG (default: augment_grid.png)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random transforms")
    p.add_argument("--columns", type=int, default=4)
    return p


def run_augment_command(args):
    import numpy as np

    from fastconv.augment.grid import draw_grid
    from fastconv.data import load_image
    if args.columns < 1:
        raise UserError(f"--columns must be >= 1, got {args.columns}")
    image = np.ascontiguousarray(load_image(args.image, mode="RGB").transpose(1, 2, 0))  # checked, (H, W, 3)
    print(draw_grid(image, args.out, seed=args.seed, columns=args.columns))
    return 0
