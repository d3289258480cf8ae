"""The command line as a user runs it: `python -m fastconv ...` in subprocesses. Each user
mistake must end with its one-line message and exit status 1, and --verbose must show the
traceback. (The demo's report: test_report.py.)"""
import os

import pytest
from children import run_cli
from conftest import skip_for_hardware

@pytest.fixture(scope="module")
def lenet_weights(tmp_path_factory):
    """An untrained LeNet-5's weights, as `fastconv train --save` writes them."""
    from fastconv.commands.common import build_model, save_model
    return save_model(build_model("lenet5"), "lenet5", tmp_path_factory.mktemp("weights") / "lenet.safetensors")


def _another_models_weights(tmp_path):
    from fastconv.commands.common import build_model, save_model
    return save_model(build_model("vgg-small"), "vgg-small", tmp_path / "vgg.safetensors")


def _unlabelled_weights(tmp_path):
    """LeNet-5's weights as .npz, which has no header to name the model: both LeNet-5 variants
    have these shapes, so the file alone cannot tell which one it is for."""
    from fastconv.commands.common import build_model, save_model
    return save_model(build_model("lenet5"), "lenet5", tmp_path / "lenet.npz")


def _corrupt_weights(tmp_path):
    path = tmp_path / "corrupt.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    return path


def _bad_image(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n not really a PNG")
    return path


def _read_only_folder(tmp_path):
    path = tmp_path / "read-only"
    path.mkdir()
    path.chmod(0o555)
    return path


# Root (as CI runs) may write into a read-only folder, so there the child is told the truth a
# user would meet: os.access reports the folder unwritable (as sys.modules does for a missing
# dependency below).
_UNWRITABLE = ("import os, sys; real = os.access; "
               "os.access = lambda p, mode, **k: False if 'read-only' in os.fspath(p) and mode & os.W_OK "
               "else real(p, mode, **k); from fastconv.cli import main; sys.exit(main(sys.argv[1:]))")

# (id, arguments (with the {placeholders} of _FILES filled in), expected message): one per
# UserError the commands raise (grep -rn "raise UserError" fastconv/) that the command line can
# reach; the no-device and optional-dependency ones follow, and the two that argparse's choices
# pre-empt (unknown model, unknown data set) are checked where they are raised.
MISTAKES = [
    # weights (fastconv/commands/common.py load_model, visualize._model)
    ("missing weights", ["visualize", "filters", "--weights", "{tmp}/nope.safetensors"], "no such weights file"),
    ("corrupt weights", ["visualize", "filters", "--weights", "{corrupt}"], "not a readable weights file"),
    ("unlabelled weights", ["visualize", "filters", "--weights", "{unlabelled}"],
     "cannot tell which model these weights are for (matches lenet5, lenet5-classic); pass --model"),
    ("weights for another model", ["visualize", "filters", "--weights", "{vgg}", "--model", "lenet5"],
     "holds weights for vgg-small, not lenet5"),
    ("no weights", ["visualize", "class-model"], "visualize class-model needs --weights"),
    # images and data (common.load_data)
    ("missing image", ["visualize", "saliency", "--weights", "{weights}", "--image", "{tmp}/nope.png"],
     "no such image file"),
    ("unreadable image", ["demo", "--image", "{bad_image}", "--out", "{tmp}/r"], "not a readable image"),
    ("mnist without a folder", ["train", "--data", "mnist"], "--data mnist needs --data-dir"),
    ("missing mnist folder", ["train", "--data", "mnist", "--data-dir", "{tmp}/nope"],
     "nope: no such folder (--data-dir)"),
    ("mnist folder without the files", ["train", "--data", "mnist", "--data-dir", "{tmp}"],
     "no t10k-images-idx3-ubyte[.gz] (the MNIST test images) here"),
    # numbers (train.check_training_args, common.set_threads, visualize)
    ("zero epochs", ["train", "--epochs", "0"], "--epochs must be >= 1, got 0"),
    ("zero batch size", ["train", "--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    ("negative limit", ["train", "--limit", "-5"], "--limit must be >= 1, got -5"),
    ("bad thread count", ["train", "--threads", "0"], "--threads must be >= 1"),
    ("zero count", ["visualize", "saliency", "--weights", "{weights}", "--count", "0"], "--count must be >= 1, got 0"),
    ("zero steps", ["visualize", "class-model", "--weights", "{weights}", "--steps", "0"],
     "--steps must be >= 1, got 0"),
    ("zero augment columns", ["augment", "{bad_image}", "--columns", "0"], "--columns must be >= 1, got 0"),
    # layers, channels, classes (visualize)
    ("unknown layer", ["visualize", "patches", "--weights", "{weights}", "--layer", "features.9"],
     "unknown layer 'features.9'"),
    ("channel out of range", ["visualize", "patches", "--weights", "{weights}", "--channel", "16"],
     "--channel 16 is out of range: features.3 has 16 channels (0-15)"),
    ("class out of range", ["visualize", "class-model", "--weights", "{weights}", "--class", "10"],
     "class 10 is out of range"),
    ("class count mismatch", ["visualize", "saliency", "--weights", "{weights}", "--count", "3", "--class", "1", "2"],
     "--class names 2 classes for 3 images; give one or one each"),
    # the report folder (demo)
    ("output is a file", ["demo", "--out", "{bad_image}"], "exists and is not a folder"),
    ("unwritable output", ["demo", "--out", "{read_only}"], "read-only: cannot write here (--out)"),
]

# placeholder -> how to make it in the test's tmp_path
_FILES = {"tmp": lambda tmp: tmp, "bad_image": _bad_image, "vgg": _another_models_weights,
          "unlabelled": _unlabelled_weights, "corrupt": _corrupt_weights, "read_only": _read_only_folder}


@pytest.mark.parametrize("args,message", [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_user_mistakes_end_in_one_line_and_status_1(args, message, lenet_weights, tmp_path):
    fill = {"weights": str(lenet_weights)}
    fill.update({key: str(make(tmp_path)) for key, make in _FILES.items() if any(f"{{{key}}}" in a for a in args)})
    proc = run_cli(*[a.format(**fill) for a in args], code=_UNWRITABLE if "{read_only}" in args else None)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert message in proc.stderr and proc.stderr.startswith(f"fastconv {args[0]}: error: "), proc.stderr


def test_user_error_sites_are_all_listed():
    """Each `raise UserError` in fastconv/ has a case here (MISTAKES, the no-device and missing
    dependency tests, the unknown model / data set test): a new one must add its case."""
    import re
    from pathlib import Path

    import fastconv
    root = Path(fastconv.__file__).parent
    sites = sum(len(re.findall(r"raise UserError\(", p.read_text())) for p in root.rglob("*.py"))
    # MISTAKES less the two images (fastconv.data.load_image's ValueErrors); no device, numba and
    # torch missing; unknown model and data set
    covered = sum(1 for m in MISTAKES if "image" not in m[0]) + 3 + 2
    assert sites == covered, f"{sites} UserError sites in fastconv/, {covered} covered by tests/test_cli.py"


def test_unknown_model_or_data_set():
    """The command line's choices turn these away first (argparse's usage error, status 2); the
    UserErrors stand behind them for the commands' own callers."""
    from fastconv.commands.common import UserError, build_model, load_data
    with pytest.raises(UserError, match="unknown model 'resnet'; choose one of lenet5, lenet5-classic, vgg-small"):
        build_model("resnet")
    with pytest.raises(UserError, match="unknown data set 'cifar'; choose digits or mnist"):
        load_data("cifar")
    for args in (["train", "--model", "resnet"], ["train", "--data", "cifar"]):
        proc = run_cli(*args)
        assert proc.returncode == 2 and "invalid choice" in proc.stderr, proc.stderr


def test_no_cuda_device_is_one_line():
    if os.path.exists("/dev/nvidiactl"):  # conftest.py's test for a GPU
        skip_for_hardware("an NVIDIA device is present: the no-device message cannot be provoked here")
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
