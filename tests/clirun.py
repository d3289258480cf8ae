"""Running the command line as a user does, for test_cli.py and test_report.py."""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import fastconv

# The fastconv these tests imported (the checkout in development, the installed package in CI),
# which the child must import too: `python -m` puts the working folder first on sys.path, and in
# CI that is a checkout without a built _C, so the child runs in a neutral folder instead.
_FASTCONV_HOME = str(Path(fastconv.__file__).resolve().parents[1])


def run_cli(*args, env=None, code=None, timeout=600):
    """Run `python -m fastconv ARGS` (or `python -c CODE ARGS`) with this environment."""
    cmd = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "fastconv", *args]
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_FASTCONV_HOME, env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory() as cwd:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
