"""The command line as a user runs it: `python -m fastconv ...` in subprocesses.

One quick demo run (`demo --epochs 1`) is shared by the report tests; each user mistake must
end with its one-line message and exit status 1, and --verbose must show the traceback."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args, env=None, code=None, timeout=600):
    """Run `python -m fastconv ARGS` (or `python -c CODE ARGS`) with this environment."""
    cmd = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "fastconv", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env or os.environ.copy())


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    proc = run_cli("demo", "--epochs", "1", "--out", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    return out, proc


@pytest.fixture(scope="module")
def lenet_weights(demo_report):
    return demo_report[0] / "model.safetensors"


def linked_files(index_html):
    return re.findall(r'(?:src|href)="([^"#][^"]*)"', index_html)


def test_demo_report_links_only_to_files_that_exist(demo_report):
    out, proc = demo_report
    page = (out / "index.html").read_text(encoding="utf-8")
    links = linked_files(page)
    assert links, "the report links no pictures"
    for link in links:
        assert "://" not in link and not link.startswith("/"), f"external or absolute link {link!r}"
        assert (out / link).is_file(), f"index.html links to {link}, which is not there"
    assert "<script" not in page and "@import" not in page
    assert f"report written to {out / 'index.html'}" in proc.stdout


def test_every_png_opens_with_pillow(demo_report):
    from PIL import Image
    pngs = sorted(demo_report[0].glob("*.png"))
    assert len(pngs) >= 5
    for path in pngs:
        with Image.open(path) as img:
            assert img.format == "PNG" and min(img.size) >= 16, path
            img.load()


def test_saved_weights_reproduce_the_reported_accuracy(demo_report, lenet_weights):
    from fastconv.commands.common import load_data, load_model
    from fastconv.train import evaluate
    metrics = json.loads((demo_report[0] / "metrics.json").read_text())
    name, model = load_model(lenet_weights)
    assert name == metrics["model"] == "lenet5"
    _, test, _ = load_data(metrics["data_set"], None, metrics["seed"])
    ev = evaluate(model, test, num_classes=10)
    assert ev["n"] == metrics["n_test"] and ev["accuracy"] == metrics["accuracy"]
    assert np.array_equal(ev["confusion"], metrics["confusion"])


def test_metrics_hold_accuracy_timings_and_the_benchmark(demo_report):
    metrics = json.loads((demo_report[0] / "metrics.json").read_text())
    assert 0.2 < metrics["accuracy"] <= 1  # one epoch on 1,438 digits: well above chance (0.1)
    assert len(metrics["history"]["loss"]) == 1
    for key in ("train", "evaluate", "total", "cpu_total"):
        assert metrics["seconds"][key] > 0
    bench = metrics["benchmark"]
    try:
        import torch  # noqa: F401
    except ImportError:
        assert bench == {"available": False, "reason": "PyTorch is not installed (pip install 'fastconv[torch]')"}
        return
    assert bench["available"] and bench["threads"] >= 1 and len(bench["rows"]) == 5
    for row in bench["rows"]:
        assert row["ratio_low"] <= row["ratio"] <= row["ratio_high"] and row["fastconv_ms"] > 0


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
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "0"}
    if run_cli(code="import fastconv, sys; sys.exit(fastconv.capabilities()['cuda'] is not None)", env=env).returncode:
        pytest.skip("a CUDA device is present: the no-device message cannot be provoked here")
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
