"""The command line as a user runs it: `python -m fastconv ...` in subprocesses. Each user
mistake must end with its one-line message and exit status 1, and --verbose must show the
traceback. (The demo's report: test_report.py.)"""
import os

import pytest
from children import run_cli

@pytest.fixture(scope="module")
def lenet_weights(tmp_path_factory):
    """An untrained LeNet-5's weights, as `fastconv train --save` writes them."""
    from fastconv.commands.common import build_model, save_model
    return save_model(build_model("lenet5"), "lenet5", tmp_path_factory.mktemp("weights") / "lenet.safetensors")


def _another_models_weights(tmp_path):
    from fastconv.commands.common import build_model, save_model
    return save_model(build_model("vgg-small"), "vgg-small", tmp_path / "vgg.safetensors")


def _bad_image(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n not really a PNG")
    return path


# (id, arguments (with {weights}, {tmp} and {bad_image} filled in), expected message)
MISTAKES = [
    ("missing weights", ["visualize", "filters", "--weights", "{tmp}/nope.safetensors"], "no such weights file"),
    ("missing image", ["visualize", "saliency", "--weights", "{weights}", "--image", "{tmp}/nope.png"],
     "no such image file"),
    ("unreadable image", ["demo", "--image", "{bad_image}", "--out", "{tmp}/r"], "not a readable image"),
    ("weights for another model", ["visualize", "filters", "--weights", "{vgg}", "--model", "lenet5"],
     "holds weights for vgg-small, not lenet5"),
    ("unknown layer", ["visualize", "patches", "--weights", "{weights}", "--layer", "features.9"],
     "unknown layer 'features.9'"),
    ("channel out of range", ["visualize", "patches", "--weights", "{weights}", "--channel", "16"],
     "--channel 16 is out of range: features.3 has 16 channels (0-15)"),
    ("class out of range", ["visualize", "class-model", "--weights", "{weights}", "--class", "10"],
     "class 10 is out of range"),
    ("mnist without a folder", ["train", "--data", "mnist"], "--data mnist needs --data-dir"),
    ("bad thread count", ["train", "--threads", "0"], "--threads must be >= 1"),
    ("output is a file", ["demo", "--out", "{bad_image}"], "exists and is not a folder"),
]


@pytest.mark.parametrize("args,message", [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_user_mistakes_end_in_one_line_and_status_1(args, message, lenet_weights, tmp_path):
    fill = {"weights": str(lenet_weights), "tmp": str(tmp_path), "bad_image": str(_bad_image(tmp_path)),
            "vgg": str(_another_models_weights(tmp_path)) if any("{vgg}" in a for a in args) else ""}
    proc = run_cli(*[a.format(**fill) for a in args])
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert message in proc.stderr and proc.stderr.startswith(f"fastconv {args[0]}: error: ")


def test_no_cuda_device_is_one_line():
    if os.path.exists("/dev/nvidiactl"):  # conftest.py's test for a GPU
        pytest.skip("an NVIDIA device is present: the no-device message cannot be provoked here")
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "0"}
    proc = run_cli("train", "--device", "cuda", "--epochs", "1", env=env)
    assert proc.returncode == 1 and proc.stderr.strip() == (
        "fastconv train: error: --device cuda: no CUDA device found; use --device cpu")


# An optional dependency made missing: the import of that module is blocked in the child.
_BLOCKED = "import sys; sys.modules[{name!r}] = None; from fastconv.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.mark.parametrize("module,args,message", [
    ("torch", ["bench"], "compares against PyTorch, which is not installed: pip install 'fastconv[torch]'"),
    ("numba", ["train", "--device", "cuda"], "--device cuda needs numba and numba-cuda"),
])
def test_missing_optional_dependency_is_one_line(module, args, message):
    proc = run_cli(*args, code=_BLOCKED.format(name=module))
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr


def test_verbose_shows_the_traceback(tmp_path):
    proc = run_cli("visualize", "filters", "--weights", str(tmp_path / "nope.safetensors"), "--verbose")
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "UserError: " in proc.stderr and "no such weights file" in proc.stderr


def test_every_subcommand_help_shows_an_example(capsys):
    from fastconv.cli import SUBCOMMANDS, main
    for name in SUBCOMMANDS:
        with pytest.raises(SystemExit) as stop:
            main([name, "--help"])
        assert stop.value.code == 0 and "\nexample:\n  fastconv " in capsys.readouterr().out, name


def test_train_on_mnist_saves_weights_that_name_their_model(mnist_dir, tmp_path):
    from fastconv.commands.common import load_model
    out = tmp_path / "lenet.safetensors"
    proc = run_cli("train", "--data", "mnist", "--data-dir", mnist_dir, "--limit", "640", "--epochs", "1",
                   "--save", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "first 8000 to train, last 2000 to test" in proc.stdout and "test accuracy" in proc.stdout
    name, model = load_model(out)
    assert name == "lenet5" and model.state_dict()["features.0.weight"].shape == (6, 1, 5, 5)
