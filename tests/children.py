"""Child Python processes that import the same fastconv as the tests: the command line as a user
runs it (test_cli.py, test_report.py) and any `python -c` / script child (import order, DDP, ...)."""
import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import fastconv

# The fastconv these tests imported (the checkout in development, the installed package in CI),
# which the child must import too: `python -m` puts the working folder first on sys.path, and in
# CI that is a checkout without a built _C, so the child runs in a neutral folder instead.
_FASTCONV_HOME = str(Path(fastconv.__file__).resolve().parents[1])


_NEUTRAL_FOLDER = tempfile.mkdtemp(prefix="fastconv-cli-")
atexit.register(shutil.rmtree, _NEUTRAL_FOLDER, ignore_errors=True)


SANITIZER_VARIABLES = ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")


def env_without_sanitizer():
    """os.environ less what tools/sanitize.sh adds, for children that are not fastconv: a
    browser, or a probe of glibc's own malloc (ASan's preloaded runtime replaces malloc)."""
    return {k: v for k, v in os.environ.items() if k not in SANITIZER_VARIABLES}


def child_kwargs(env=None):
    """subprocess keyword arguments (env, cwd, text) under which a child Python imports the
    fastconv these tests imported, whatever folder the tests run from."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_FASTCONV_HOME, env.get("PYTHONPATH")) if p)
    return {"env": env, "cwd": _NEUTRAL_FOLDER, "text": True}


def _command(args, env, code):
    cmd = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "fastconv", *args]
    return cmd, child_kwargs(env)


def run_cli(*args, env=None, code=None, timeout=600):
    """Run `python -m fastconv ARGS` (or `python -c CODE ARGS`) to the end; CompletedProcess."""
    cmd, kw = _command(args, env, code)
    return subprocess.run(cmd, capture_output=True, timeout=timeout, **kw)


def start_cli(*args, env=None, code=None):
    """Start `python -m fastconv ARGS` without waiting; Popen with piped output."""
    cmd, kw = _command(args, env, code)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
