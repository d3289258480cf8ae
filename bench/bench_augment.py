"""Augmentation throughput: fastconv.augment vs albumentations (OpenCV) and, if importable,
torchvision.transforms.v2, on 64 RGB 224x224 crops of real photos (sklearn's bundled
china.jpg / flower.jpg).

albumentations loops over the images as uint8 HWC arrays (its normal use). fastconv runs on
the same uint8 HWC batch channels-last (pipeline.apply_images, no conversion), and also on the
float32 NCHW batch a training loop feeds it (reported as its own column). Every transform is
applied with p=1 except inside the composed pipeline. Images per second, best of --repeat
(rounds interleaved across the libraries, so background load hits them alike);
threads: fastconv.set_num_threads(n) and cv2.setNumThreads(n).

    python bench/bench_augment.py [--threads 1 2] [--repeat 5]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import fastconv
from fastconv import augment as fa


def photos(n=64, size=224, seed=0):
    from sklearn.datasets import load_sample_images
    src = load_sample_images().images
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        im = src[i % len(src)]
        y, x = rng.integers(0, im.shape[0] - size), rng.integers(0, im.shape[1] - size)
        out.append(np.ascontiguousarray(im[y:y + size, x:x + size]))
    return np.stack(out)


def cases(A, cv2):
    """name -> (albumentations transform, fastconv pipeline transforms)."""
    c = {
        "hflip": (A.HorizontalFlip(p=1), [fa.HorizontalFlip(p=1)]),
        "rotate": (A.Rotate(limit=30, p=1, border_mode=cv2.BORDER_CONSTANT, interpolation=cv2.INTER_LINEAR),
                   [fa.Rotate(30)]),
        "affine": (A.Affine(rotate=(-15, 15), translate_percent=(-0.1, 0.1), scale=(0.9, 1.1), shear=(-10, 10),
                            border_mode=cv2.BORDER_CONSTANT, p=1),
                   [fa.Affine(rotate=15, translate=0.1, scale=(0.9, 1.1), shear=10)]),
        "brightness/contrast": (A.RandomBrightnessContrast(0.2, 0.2, p=1),
                                [fa.ColorJitter(brightness=0.2, contrast=0.2)]),
        "colour jitter": (A.ColorJitter(0.2, 0.2, 0.2, 0.05, p=1), [fa.ColorJitter(0.2, 0.2, 0.2, 0.05)]),
        "gaussian blur": (A.GaussianBlur(blur_limit=0, sigma_limit=(0.5, 1.5), p=1),
                          [fa.GaussianBlur((0.5, 1.5), p=1, truncate=3.5)]),  # radius ~3.5 sigma, as albumentations
        "gaussian noise": (A.GaussNoise(std_range=(0.02, 0.05), p=1), [fa.GaussianNoise((0.02, 0.05))]),
    }
    c["composed"] = (
        A.Compose([A.HorizontalFlip(p=0.5),
                   A.Affine(rotate=(-15, 15), translate_percent=(-0.1, 0.1), scale=(0.9, 1.1),
                            border_mode=cv2.BORDER_CONSTANT, p=1),
                   A.ColorJitter(0.2, 0.2, 0.2, 0.02, p=0.8), A.GaussianBlur(sigma_limit=(0.5, 1.5), p=0.3),
                   A.GaussNoise(std_range=(0.02, 0.05), p=0.5)]),
        [fa.HorizontalFlip(p=0.5), fa.Affine(rotate=15, translate=0.1, scale=(0.9, 1.1)),
         fa.ColorJitter(0.2, 0.2, 0.2, 0.02, p=0.8), fa.GaussianBlur((0.5, 1.5), p=0.3, truncate=3.5),
         fa.GaussianNoise((0.02, 0.05), p=0.5)])
    return c


def best_times(fns, repeat):
    """Best wall time of each function over `repeat` rounds. The rounds interleave the
    functions (a, b, c, a, b, c, ...) so that load from other processes on the machine
    penalises every library alike instead of whichever happened to run during it."""
    for fn in fns:
        fn()  # warm-up (allocations, first-touch)
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def torchvision_cases():
    try:
        from torchvision.transforms import v2  # noqa: F401
    except Exception as e:  # not installed, or broken beside this torch
        return None, f"torchvision.transforms.v2 unavailable ({type(e).__name__})"
    import torch
    from torchvision.transforms import v2
    return {
        "hflip": v2.RandomHorizontalFlip(p=1), "rotate": v2.RandomRotation(30),
        "affine": v2.RandomAffine(15, (0.1, 0.1), (0.9, 1.1), 10),
        "brightness/contrast": v2.ColorJitter(0.2, 0.2), "colour jitter": v2.ColorJitter(0.2, 0.2, 0.2, 0.05),
        "gaussian blur": v2.GaussianBlur(9, (0.5, 1.5)), "gaussian noise": None, "composed": None,
    }, torch


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--n", type=int, default=64)
    args = ap.parse_args()
    import albumentations as A
    import cv2

    imgs = photos(args.n)
    batch = fa.images_to_batch(imgs)[0]
    tv, torch = torchvision_cases()
    if tv is None:
        print(f"# {torch}: skipped")
        torch = None
    print(f"# {args.n} RGB images 224x224 (crops of sklearn china.jpg / flower.jpg); images/s, best of {args.repeat}")
    print(f"# albumentations {A.__version__}, OpenCV {cv2.__version__}; fastconv ISA {fastconv.capabilities().get('isa', '?')}")
    header = f"{'transform':22s} {'thr':>3s} {'album.':>9s} {'fc uint8':>9s} {'ratio':>6s} {'fc f32':>9s} {'ratio':>6s}"
    if tv is not None:
        header += f" {'tv v2':>9s}"
    print(header)
    for threads in args.threads:
        fastconv.set_num_threads(threads)
        cv2.setNumThreads(threads)
        if torch is not None:
            torch.set_num_threads(threads)
        for name, (alb, fct) in cases(A, cv2).items():
            acomp = alb if isinstance(alb, A.Compose) else A.Compose([alb])
            pipe = fa.Compose(fct, seed=0)
            ta, tu, tf = best_times([lambda: [acomp(image=im)["image"] for im in imgs],
                                     lambda: pipe.apply_images(imgs), lambda: pipe(batch)], args.repeat)
            n = args.n
            line = f"{name:22s} {threads:3d} {n / ta:9.0f} {n / tu:9.0f} {ta / tu:5.2f}x {n / tf:9.0f} {ta / tf:5.2f}x"
            if tv is not None and tv.get(name) is not None:
                timgs = torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous()
                tt, = best_times([lambda: [tv[name](im) for im in timgs]], args.repeat)
                line += f" {n / tt:9.0f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
