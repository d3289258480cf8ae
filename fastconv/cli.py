"""Command line: `fastconv demo | train | visualize | augment | bench` (also `python -m fastconv`).

Each subcommand is an (add_parser, run) pair in SUBCOMMANDS, so a new one is added without
touching the others; the implementations live in fastconv/commands/. A user's mistake ends as one line on stderr and exit status 1, never a traceback:
the commands raise UserError for what they check themselves, and the ValueError / TypeError /
OSError / ImportError that the library raises on bad input are reported the same way.
`--verbose` (before or after the subcommand) shows the traceback instead.
"""
from __future__ import annotations

import argparse
import sys
import traceback

from fastconv.commands.augment import add_augment_command, run_augment_command
from fastconv.commands.bench import add_bench_command, run_bench_command
from fastconv.commands.common import UserError
from fastconv.commands.demo import add_demo_command, run_demo_command
from fastconv.commands.train import add_train_command, run_train_command
from fastconv.commands.visualize import add_visualize_command, run_visualize_command

# name -> (add_parser(subparsers, parents) -> parser, run(args) -> exit code)
SUBCOMMANDS = {
    "demo": (add_demo_command, run_demo_command),
    "train": (add_train_command, run_train_command),
    "visualize": (add_visualize_command, run_visualize_command),
    "augment": (add_augment_command, run_augment_command),
    "bench": (add_bench_command, run_bench_command),
}

# What the library raises on bad input. Anything else (IndexError, RuntimeError, ...) is a bug
# in fastconv and keeps its traceback.
_USER_ERRORS = (UserError, ValueError, TypeError, OSError, ImportError)


def _common_options():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback when something goes wrong")
    return common


def build_parser():
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="fastconv", parents=[common],
        description="Compiled-kernel CNNs: train, look inside, augment and benchmark.",
        epilog="start with: fastconv demo   (then open fastconv-report/index.html)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (add, run) in SUBCOMMANDS.items():
        add(sub, [common]).set_defaults(_run=run)
    return parser


def _message(error):
    if isinstance(error, ImportError) and getattr(error, "name", None) and str(error).startswith("No module"):
        return f"the optional dependency {error.name!r} is not installed ({error})"
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    return str(error) or type(error).__name__


def main(argv=None):
    args = build_parser().parse_args(argv)
    verbose = getattr(args, "verbose", False)
    try:
        return args._run(args)
    except _USER_ERRORS as error:
        if verbose:
            traceback.print_exc()
        else:
            print(f"fastconv {args.command}: error: {_message(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"fastconv {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
