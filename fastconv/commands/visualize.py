"""`fastconv visualize WHAT`: one picture of a saved model (or of a photo), the report's pieces
one at a time: feature-maps, patches, class-model, neuron, saliency, grad-cam, filters,
receptive-field."""
from __future__ import annotations

import numpy as np

from fastconv.commands.common import MODELS, UserError, add_command, build_model, load_data, load_model

EXAMPLE = """\
  fastconv train --epochs 10 --save lenet.safetensors
  fastconv visualize feature-maps --weights lenet.safetensors --image digit.png --invert --out maps.png
  fastconv visualize patches --weights lenet.safetensors --layer features.3 --out patches.png
  fastconv visualize class-model --weights lenet.safetensors --class 3 --out three.png
  fastconv visualize neuron --weights lenet.safetensors --layer features.3 --channel 0 1 2 --out units.png
  fastconv visualize saliency --weights lenet.safetensors --out saliency.png       # first test digits
  fastconv visualize grad-cam --weights lenet.safetensors --image digit.png --out cam.png
  fastconv visualize filters --weights lenet.safetensors --out filters.png
  fastconv visualize filters --image photo.jpg --out sobel.png                       # the Sobel example
  fastconv visualize receptive-field --model vgg-small"""

KINDS = ["feature-maps", "patches", "class-model", "neuron", "saliency", "grad-cam", "filters", "receptive-field"]


def add_visualize_command(subparsers, parents):
    p = add_command(subparsers, "visualize", parents, "draw one picture of a trained model: feature maps, top-9 "
                    "patches, class models, neurons, saliency, Grad-CAM, filters (or the Sobel example on "
                    "--image), the receptive-field table", EXAMPLE)
    p.add_argument("what", choices=KINDS, metavar="WHAT", help=", ".join(KINDS))
    p.add_argument("--weights", default=None, help="weights written by fastconv train / demo")
    p.add_argument("--model", choices=list(MODELS), default=None,
                   help="which net the weights are for (default: read from the weights file)")
    p.add_argument("--image", nargs="+", default=None,
                   help="your image file(s), resized to 32x32 grey (default: digits from the test set)")
    p.add_argument("--invert", action="store_true", help="invert --image (dark digits on a light background)")
    p.add_argument("--data", choices=["digits", "mnist"], default="digits", help="images when --image is not given")
    p.add_argument("--data-dir", default=None, help="folder with the MNIST IDX files (--data mnist)")
    p.add_argument("--layer", default=None, help="layer name, e.g. features.3 (default: the last conv layer)")
    p.add_argument("--channel", type=int, nargs="+", default=None, help="channel(s) of --layer (default: neuron, the 8 most active on the test images; patches, all)")
    p.add_argument("--class", dest="classes", type=int, nargs="+", default=None,
                   help="class(es) to explain or draw (default: all for class-model, else the prediction)")
    p.add_argument("--steps", type=int, default=200, help="gradient-ascent steps (class-model, neuron)")
    p.add_argument("--count", type=int, default=8, help="how many test images when --image is not given")
    p.add_argument("--out", default=None, help="output PNG (default: WHAT.png)")
    return p


def _check_layer(model, layer):
    """A spatial layer's name, checked against the model (default: the last conv layer)."""
    from fastconv.interpret.activations import conv_layer_names, spatial_layer_names
    spatial = spatial_layer_names(model)
    if layer is None:
        return conv_layer_names(model)[-1]
    if layer not in spatial:
        raise UserError(f"unknown layer {layer!r}; this model's spatial layers are {', '.join(spatial)}")
    return layer


def _check_channels(model, layer, channels):
    """The channels asked for (default: None), each checked against the layer's channel count."""
    from fastconv.interpret import feature_maps
    if channels is None:
        return None
    count = feature_maps(model, np.zeros((1, 1, 32, 32), np.float32), layer)[layer].shape[1]
    for c in channels:
        if not 0 <= c < count:
            raise UserError(f"--channel {c} is out of range: {layer} has {count} channels (0-{count - 1})")
    return list(channels)


def _check_classes(classes, num_classes=10):
    for c in classes:
        if not 0 <= c < num_classes:
            raise UserError(f"class {c} is out of range: the model has {num_classes} classes (0-{num_classes - 1})")
    return list(classes)


def _images(args, whole_test_set=False):
    """(images (N, 1, 32, 32) float32, true labels or None): --image, else the first --count
    test images (or all of them)."""
    from fastconv.data import load_image
    if args.image:
        images = np.stack([load_image(path, mode="L", size=(32, 32)) for path in args.image])
        return (1.0 - images if args.invert else images), None
    if args.count < 1:
        raise UserError(f"--count must be >= 1, got {args.count}")
    _, (x, y), _ = load_data(args.data, args.data_dir)
    return (x, y) if whole_test_set else (x[:args.count], y[:args.count])


def _model(args):
    if args.weights is None:
        raise UserError(f"visualize {args.what} needs --weights (from fastconv train --save or fastconv demo)")
    return load_model(args.weights, args.model)[1]


def run_visualize_command(args):
    from fastconv.interpret import pictures
    from fastconv.interpret.activations import conv_layer_names
    out = args.out or f"{args.what}.png"
    if args.what == "receptive-field":
        from fastconv.interpret import receptive_field, render
        model = _model(args) if args.weights else build_model(args.model or "lenet5")
        print(render.rf_table_text(receptive_field(model, 32)))
        return 0
    if args.what == "filters" and args.image:
        from fastconv.data import load_image
        print(pictures.sobel(load_image(args.image[0]), out))
        return 0
    if args.steps < 1:
        raise UserError(f"--steps must be >= 1, got {args.steps}")
    model = _model(args)
    if args.what == "filters":
        print(pictures.filters(model, out))
    elif args.what == "class-model":
        pictures.class_models(model, _check_classes(args.classes or range(10)), out, steps=args.steps)
        print(out)
    elif args.what == "neuron":
        layer = _check_layer(model, args.layer)
        channels = _check_channels(model, layer, args.channel) or \
            pictures.most_active_channels(model, layer, _images(args, whole_test_set=True)[0], 8)
        pictures.neurons(model, layer, channels, out, steps=args.steps)
        print(out)
    else:
        images, truth = _images(args, whole_test_set=args.what == "patches")
        if args.what == "feature-maps":
            layers = [_check_layer(model, args.layer)] if args.layer else conv_layer_names(model)
            print(pictures.feature_maps(model, images[:1], layers, out))
        elif args.what == "patches":
            layer = _check_layer(model, args.layer)
            pictures.top_patches(model, layer, images, out, channels=_check_channels(model, layer, args.channel))
            print(out)
        else:
            predicted = model.forward(images).argmax(axis=1)
            targets = _check_classes(args.classes) if args.classes else list(predicted)
            if len(targets) == 1:
                targets = targets * len(images)
            if len(targets) != len(images):
                raise UserError(f"--class names {len(targets)} classes for {len(images)} images; give one or one each")
            draw = pictures.saliency if args.what == "saliency" else pictures.grad_cam
            extra = () if args.what == "saliency" else (_check_layer(model, args.layer),)
            print(draw(model, images, targets, *extra, out, predicted=predicted, truth=truth))
    return 0
