"""Augmentation throughput: fastconv.augment vs albumentations (OpenCV) and, if importable,
torchvision.transforms.v2, on 64 RGB 224x224 crops of real photos (sklearn's bundled
china.jpg / flower.jpg).

albumentations loops over the images as uint8 HWC arrays (its normal use). fastconv runs on
the same uint8 HWC batch channels-last (pipeline.apply_images, no conversion), and also on the
float32 NCHW batch a training loop feeds it (reported as its own column). Every transform is
applied with p=1 except inside the composed pipeline. Both sides do the same work per call:
the whole batch, output arrays allocated inside the call. Every round times each library once
(median of --calls calls), the libraries alternating within the round so background load hits
them alike; after a warm-up, --rounds rounds give the ratio (albumentations time / fastconv
time, > 1: fastconv faster) as the median over rounds with its min-max spread, and images per
second as the median. Threads: fastconv.set_num_threads(n) and cv2.setNumThreads(n).

    pip install ".[bench]"
    python bench/bench_augment.py [--threads 1] [--rounds 5] [--only brightness/contrast]
"""
from __future__ import annotations

import argparse
import statistics
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
    c["brightness+contrast steps"] = (
        A.Compose([A.RandomBrightnessContrast(0.2, 0, p=1), A.RandomBrightnessContrast(0, 0.2, p=1)]),
        [fa.Brightness(0.2), fa.Contrast(0.2)])
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


def round_times(fns, rounds, calls):
    """Per round, the median time of `calls` calls of each function; the functions alternate
    within a round (and start in turn), so load from other processes hits them alike. Returns
    one list of `rounds` times per function."""
    for fn in fns:
        fn()
        fn()  # warm-up: allocations, first touch, caches
    times = [[] for _ in fns]
    for r in range(rounds):
        for k in range(len(fns)):
            i = (k + r) % len(fns)
            samples = []
            for _ in range(calls):
                t0 = time.perf_counter()
                fns[i]()
                samples.append(time.perf_counter() - t0)
            times[i].append(statistics.median(samples))
    return times


def ratio_cell(base, ours):
    """Median of the per-round ratios base/ours, with their min-max spread."""
    ratios = [b / o for b, o in zip(base, ours)]
    return f"{statistics.median(ratios):5.2f} ({min(ratios):.2f}-{max(ratios):.2f})"


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
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--only", nargs="+", help="transform names to run (default: all)")
    args = ap.parse_args()
    import albumentations as A
    import cv2

    imgs = photos(args.n)
    batch = fa.images_to_batch(imgs)[0]
    tv, torch = torchvision_cases()
    if tv is None:
        print(f"# {torch}: skipped")
        torch = None
    print(f"# {args.n} RGB images 224x224 (crops of sklearn china.jpg / flower.jpg); images/s (median) and "
          f"ratio album./fastconv: median (min-max) over {args.rounds} interleaved rounds of {args.calls} calls")
    print(f"# albumentations {A.__version__}, OpenCV {cv2.__version__}; fastconv ISA {fastconv.capabilities().get('isa', '?')}")
    header = f"{'transform':26s} {'thr':>3s} {'album.':>8s} {'fc uint8':>8s} {'ratio (spread)':>17s} {'fc f32':>8s} {'ratio (spread)':>17s}"
    if tv is not None:
        header += f" {'tv v2':>9s}"
    print(header)
    for threads in args.threads:
        fastconv.set_num_threads(threads)
        cv2.setNumThreads(threads)
        if torch is not None:
            torch.set_num_threads(threads)
        for name, (alb, fct) in cases(A, cv2).items():
            if args.only and name not in args.only:
                continue
            acomp = alb if isinstance(alb, A.Compose) else A.Compose([alb])
            pipe = fa.Compose(fct, seed=0)
            ta, tu, tf = round_times([lambda: [acomp(image=im)["image"] for im in imgs],
                                      lambda: pipe.apply_images(imgs), lambda: pipe(batch)], args.rounds, args.calls)
            n, med = args.n, statistics.median
            line = (f"{name:26s} {threads:3d} {n / med(ta):8.0f} {n / med(tu):8.0f} {ratio_cell(ta, tu):>17s} "
                    f"{n / med(tf):8.0f} {ratio_cell(ta, tf):>17s}")
            if tv is not None and tv.get(name) is not None:
                timgs = torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous()
                tt, = round_times([lambda: [tv[name](im) for im in timgs]], args.rounds, args.calls)
                line += f" {n / med(tt):9.0f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
