"""How a CNN sees: every fastconv.interpret picture, from a LeNet-5 and a small VGG trained
on the real MNIST digits (the pictures in docs/images were made by this script).

    python examples/interpret_lenet.py --mnist DIR [--out docs/images] [--skip-vgg]

DIR holds the MNIST IDX files (t10k-*; the 10,000 test digits: 8,000 train the nets here,
the other 2,000 are shown and scored). Takes ~1 min on 2 cores (the VGG most of it).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from fastconv import data, interpret, models, nn
from fastconv.interpret import render
from fastconv.train import evaluate, fit


def train(net, x, y, epochs, lr):
    fit(net, (x[:8000], y[:8000]), epochs=epochs, batch_size=64, optimizer=nn.Adam(net.parameters(), lr=lr),
        progress=False, seed=0)
    print(f"  accuracy on the 2,000 held-out digits: {evaluate(net, (x[8000:], y[8000:]))['accuracy']:.3f}")
    return net.eval()


def one_of_each_digit(x, y):
    held_x, held_y = x[8000:], y[8000:]
    pick = [int(np.flatnonzero(held_y == d)[0]) for d in range(10)]
    return held_x[pick], held_y[pick]


def lenet_pictures(x, y, out):
    print("LeNet-5 (ReLU, max-pool)")
    net = train(models.lenet5("relu", "max", seed=0), x, y, epochs=3, lr=3e-3)
    print(render.rf_table_text(interpret.receptive_field(net, 32)))
    render.filter_grid(interpret.first_layer_filters(net), "LeNet-5 features.0", cell=56,
                       path=out / "lenet_filters.png")
    digits, labels = one_of_each_digit(x, y)
    maps = interpret.feature_maps(net, digits[:1], ["features.0", "features.3"])
    render.feature_map_grid(maps["features.0"], "LeNet-5 features.0 (after ReLU)", ncols=6,
                            path=out / "lenet_feature_maps_conv1.png")
    render.feature_map_grid(maps["features.3"], "LeNet-5 features.3 (after ReLU)", ncols=8,
                            path=out / "lenet_feature_maps_conv2.png")
    patches = interpret.top_patches(net, "features.3", x[8000:], k=9)
    render.patch_grid(patches, cell=36, path=out / "lenet_top_patches.png")
    plain = interpret.class_model(net, list(range(10)))
    robust = interpret.class_model(net, list(range(10)), preset="robust")
    tiles = np.concatenate([plain.image, robust.image])
    probs = np.concatenate([plain.trace.prob[-1], robust.trace.prob[-1]])
    render.grid(tiles, [f"{d % 10}: p={p:.2f}" for d, p in enumerate(probs)], ncols=10, cell=64,
                row_labels=["plain", "robust"], title="LeNet-5 class models (Simonyan et al.; robust preset below)",
                path=out / "lenet_class_models.png")
    units = interpret.maximize_activation(net, "features.3", list(range(16)), preset="robust")
    render.visualization_grid(units, kind="ch", ncols=8, cell=56, title="LeNet-5 features.3: channel images",
                              path=out / "lenet_channel_images.png")
    render.attribution_grid(digits, {
        "saliency": interpret.saliency(net, digits, labels),
        "SmoothGrad": interpret.smoothgrad(net, digits, labels),
        "guided BP": interpret.guided_backprop(net, digits, labels),
        "int. grad.": interpret.integrated_gradients(net, digits, labels),
        "Grad-CAM": interpret.grad_cam(net, digits, labels, "features.3"),
    }, labels=[f"label {v}" for v in labels], cell=56, title="LeNet-5: which pixels the true class's score depends on",
        path=out / "lenet_attribution.png")


def vgg_pictures(x, y, out):
    print("small VGG (3x3 convs, blocks (1,16,2) (16,32,2) (32,64,2))")
    net = models.vgg(((1, 16, 2), (16, 32, 2), (32, 64, 2)), input_size=32, hidden=128, num_classes=10, seed=0)
    net = train(net, x, y, epochs=2, lr=1e-3)
    print(render.rf_table_text([r for r in interpret.receptive_field(net, 32) if r.kind != "ReLU"]))
    robust = interpret.class_model(net, list(range(10)), preset="robust")
    plain = interpret.class_model(net, list(range(10)))
    tiles = np.concatenate([plain.image, robust.image])
    probs = np.concatenate([plain.trace.prob[-1], robust.trace.prob[-1]])
    render.grid(tiles, [f"{d % 10}: p={p:.2f}" for d, p in enumerate(probs)], ncols=10, cell=64,
                row_labels=["plain", "robust"], title="small VGG class models (plain; robust preset below)",
                path=out / "vgg_class_models.png")
    # deep channels fire at a few places, so the centre unit is a better objective than the mean
    units = interpret.maximize_activation(net, "features.12", list(range(16)), position=(4, 4), preset="robust")
    render.visualization_grid(units, kind="ch", ncols=8, cell=56,
                              title="small VGG features.12: images for the centre unit (4, 4)",
                              path=out / "vgg_channel_images.png")
    patches = interpret.top_patches(net, "features.7", x[8000:], k=8)
    render.patch_grid(patches, channels=range(8), cell=40, path=out / "vgg_top_patches.png")
    digits, labels = one_of_each_digit(x, y)
    render.attribution_grid(digits, {f"Grad-CAM {layer}": interpret.grad_cam(net, digits, labels, layer)
                                     for layer in ("features.7", "features.12")},
                            labels=[f"label {v}" for v in labels], cell=56, title="small VGG: Grad-CAM by depth",
                            path=out / "vgg_gradcam.png")


def sobel_picture(out):
    try:
        from sklearn.datasets import load_sample_image
    except ImportError:
        print("scikit-learn not installed: skipping the Sobel picture")
        return
    photo = load_sample_image("china.jpg")[::3, ::3].transpose(2, 0, 1) / 255.0
    horizontal, vertical = interpret.sobel(photo)
    tiles = np.stack([photo, render.to_rgb(np.abs(horizontal)), render.to_rgb(np.abs(vertical))])
    render.grid(tiles, ["photo", "|Sobel [[1,2,1],[0,0,0],[-1,-2,-1]]|", "|its transpose|"], ncols=3,
                normalise=False, title="Sobel edge detectors applied with conv2d", path=out / "sobel.png")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mnist", default=os.environ.get("FASTCONV_MNIST_DIR", str(Path(__file__).resolve().parents[1] / "tests" / "data" / "mnist")),
                    help="folder with the MNIST IDX files (default: the test split shipped in tests/data/mnist)")
    ap.add_argument("--out", default="docs/images")
    ap.add_argument("--skip-vgg", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    x, y = data.mnist(args.mnist, "test", pad=2, dtype="float32")
    ex = interpret.lecture_example()
    print("the lecture's 6x6 example:\n", ex.first, "\nthen\n", ex.second, f"\n(each unit sees {ex.receptive_field}x"
          f"{ex.receptive_field} pixels)")
    sobel_picture(out)
    lenet_pictures(x, y, out)
    if not args.skip_vgg:
        vgg_pictures(x, y, out)
    print(f"pictures in {out}/")


if __name__ == "__main__":
    main()
