"""`fastconv demo`: train with augmentation, look inside the trained net, time it against
PyTorch, and write everything as a report (index.html + PNGs + weights + metrics.json)."""
from __future__ import annotations

import os
import platform
import time

from fastconv.commands.common import UserError, add_command, save_model
from fastconv.commands.train import add_training_options, train_model

EXAMPLE = """\
  fastconv demo                                  # under a minute on 2 cores
  fastconv demo --epochs 1 --out /tmp/quick      # a quick version
  fastconv demo --data mnist --data-dir tests/data/mnist --model vgg-small --image photo.jpg"""

DEFAULT_EPOCHS = 12


def add_demo_command(subparsers, parents):
    p = add_command(subparsers, "demo", parents, "train a CNN with augmentation, look inside it, time it against "
                    "PyTorch, and write an HTML report", EXAMPLE)
    add_training_options(p)
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    p.add_argument("--out", default="fastconv-report", help="report folder (default: ./fastconv-report)")
    p.add_argument("--image", default=None,
                   help="a photo for the Sobel and augmentation pictures (default: the bundled one)")
    p.add_argument("--no-bench", action="store_true", help="skip the timing against PyTorch")
    return p


def _prepare_out_dir(out):
    if os.path.exists(out) and not os.path.isdir(out):
        raise UserError(f"{out}: exists and is not a folder (--out)")
    os.makedirs(out, exist_ok=True)
    if not os.access(out, os.W_OK):
        raise UserError(f"{out}: cannot write here (--out)")
    return out


def run_demo_command(args):
    from fastconv.commands.bench import run_benchmark, torch_available
    from fastconv.data import load_image
    from fastconv.report import ReportContext, bundled_photo, write_metrics, write_report
    wall0, cpu0 = time.perf_counter(), _cpu_seconds()
    photo = args.image or bundled_photo()
    load_image(photo)  # a bad --image fails now, not after training
    out = _prepare_out_dir(args.out)
    result = train_model(args)
    save_model(result["model"], args.model, os.path.join(out, "model.safetensors"))
    ctx = ReportContext(out_dir=out, model_name=args.model, model=result["model"], train=result["train"],
                        test=result["test"], data_description=result["data_description"],
                        history=result["history"], evaluation=result["evaluation"], threads=result["threads"],
                        photo=photo, seed=args.seed, quick=args.epochs == 1, seconds=dict(result["seconds"]))
    if not args.no_bench:
        print("timing fastconv against PyTorch ..." if torch_available() else "PyTorch is not installed: no timing")
        ctx.benchmark = ctx.timed("benchmark", run_benchmark, result["threads"], args.epochs == 1)
    print("writing the report ...")
    index = write_report(ctx, "fastconv demo report",
                         f"{args.model} on {result['data_description']}",
                         f"fastconv {_version()} · {platform.platform(terse=True)} · "
                         f"{time.strftime('%Y-%m-%d %H:%M')}")
    ctx.seconds["total"] = time.perf_counter() - wall0
    ctx.seconds["cpu_total"] = _cpu_seconds() - cpu0
    write_metrics(ctx, os.path.join(out, "metrics.json"),
                  {"epochs": args.epochs, "seed": args.seed, "data_set": args.data, "weights": "model.safetensors",
                   "device": result["device"], "learning_rate": result["lr"]})
    print(f"report written to {index} ({ctx.seconds['total']:.0f} s, {ctx.seconds['cpu_total']:.0f} s CPU)")
    return 0


def _cpu_seconds():
    """CPU time of this process and the children it waited for (the benchmark process)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _version():
    import fastconv
    return fastconv.__version__
