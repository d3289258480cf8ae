"""The demo's report, from one quick run (`python -m fastconv demo --epochs 1`) shared by every
test here: links, pictures, weights, metrics.json, and a headless-Chromium screenshot."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from children import env_without_sanitizer, run_cli, start_cli

import fastconv.report


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    proc = run_cli("demo", "--epochs", "1", "--out", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    return out, proc


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


def test_saved_weights_reproduce_the_reported_accuracy(demo_report):
    from fastconv.commands.common import load_data, load_model
    from fastconv.train import evaluate
    metrics = json.loads((demo_report[0] / "metrics.json").read_text())
    name, model = load_model(demo_report[0] / "model.safetensors")
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




def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_renders_in_headless_chromium(demo_report, tmp_path):
    from PIL import Image
    exe = _chromium()
    if exe is None:  # software, which .ci/run installs: not a reason to skip
        pytest.fail("Chromium is not installed (Debian: apt-get install chromium), so the report cannot be rendered")
    shot = tmp_path / "report.png"
    proc = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--screenshot={shot}", "--window-size=1280,2000", (demo_report[0] / "index.html").as_uri()],
                          capture_output=True, text=True, timeout=180, env=env_without_sanitizer())
    assert shot.is_file(), proc.stderr
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape == (2000, 1280, 3)
    assert pixels[5:60, :400].mean() < 90  # the dark title bar: the page and its inline style rendered
    # the pictures drew: charts, a confusion matrix, a photo and heat maps give thousands of
    # colours where a page of text and broken-image icons gives a few hundred
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 3000


def test_visualize_draws_each_picture_from_the_demo_weights(demo_report, tmp_path):
    """Every `fastconv visualize` kind on the demo's weights, as its --help examples run them
    (on the user's own image where it takes one), started side by side."""
    from PIL import Image
    weights = str(demo_report[0] / "model.safetensors")
    digit = tmp_path / "digit.png"
    Image.fromarray(np.pad(np.full((12, 4), 30, np.uint8), ((10, 10), (14, 14)), constant_values=230)).save(digit)
    photo = str(Path(fastconv.report.bundled_photo()))
    jobs = {
        "feature-maps": ["--weights", weights, "--image", str(digit), "--invert"],
        "patches": ["--weights", weights, "--layer", "features.3", "--channel", "0", "1"],
        "class-model": ["--weights", weights, "--class", "3", "--steps", "5"],
        "neuron": ["--weights", weights, "--layer", "features.3", "--channel", "0", "1", "--steps", "5"],
        "saliency": ["--weights", weights, "--count", "4"],
        "grad-cam": ["--weights", weights, "--image", str(digit), "--invert"],
        "filters": ["--weights", weights],
        "sobel": ["--image", photo],
    }
    procs = {kind: start_cli("visualize", "filters" if kind == "sobel" else kind, *args,
                             "--out", str(tmp_path / f"{kind}.png")) for kind, args in jobs.items()}
    for kind, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{kind}: {err}"
        with Image.open(tmp_path / f"{kind}.png") as img:
            assert img.format == "PNG" and min(img.size) >= 32, kind
    table = run_cli("visualize", "receptive-field", "--weights", weights)
    assert table.returncode == 0 and "features.3" in table.stdout and "14x14" in table.stdout
