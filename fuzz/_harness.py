"""What every atheris harness here shares: a temporary file per input and the libFuzzer entry.

A harness defines test_one_input(data: bytes); any exception it lets escape is a finding
(atheris prints the input and stops). The harnesses catch only the exceptions the entry point
promises (ValueError and the like), so a leaked library error, a crash or a hang is reported.
"""
import os
import sys
import tempfile
import traceback

import atheris

_DIR = tempfile.mkdtemp(prefix="fastconv-fuzz-")


def temp_file(data: bytes, suffix: str) -> str:
    """data written to a reused temporary file ending in suffix (the loaders pick the format by it)."""
    path = os.path.join(_DIR, "input" + suffix)
    with open(path, "wb") as f:
        f.write(data)
    return path


def assert_raised_by_fastconv(error):
    """The exception was raised inside the fastconv package (its checks, or its bindings), not by
    a mistyped call in the harness itself, which would otherwise pass as a "rejection"."""
    frame = traceback.extract_tb(error.__traceback__)[-1]
    assert f"{os.sep}fastconv{os.sep}" in frame.filename, (repr(error), frame)


def main(test_one_input):
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
