"""Running the command line as a user does, for test_cli.py and test_report.py."""
import os
import subprocess
import sys


def run_cli(*args, env=None, code=None, timeout=600):
    """Run `python -m fastconv ARGS` (or `python -c CODE ARGS`) with this environment."""
    cmd = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "fastconv", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env or os.environ.copy())
