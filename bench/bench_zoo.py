"""Whole PyTorch CNNs on every engine a user might pick, each engine alone in its own process,
the processes alternating, >= 3 rounds, median with min-max spread (issue 22):

  nets     AlexNet, VGG-16, ResNet-18, ResNet-50, MobileNetV2: the plain-torch twins of
           tests/torch_zoo.py (torchvision's layers and parameter counts; random weights and
           BatchNorm statistics, the same in every process), batch 1 and 8, 224x224, fp32
  engines  eager            torch eager, inference_mode
           compile          torch.compile(model, backend=fastconv.torch.compile_backend) (the backend
                            "fastconv" by name once fastconv is installed), inference_mode
           patch            fastconv.torch.patch(model) (its default policy), inference_mode
           onnxruntime      ONNX Runtime, CPU execution provider, fp32
           openvino_f32     OpenVINO CPU, INFERENCE_PRECISION_HINT=f32
           openvino_default OpenVINO CPU at its default precision (for the record: bf16 on CPUs with
                            AVX512-BF16 / AMX; the table says which it used)

    python3 bench/bench_zoo.py [--nets resnet18 ...] [--batches 1 8] [--engines eager compile ...]
                               [--threads 2] [--rounds 3] [--quick] [--train]

--train times a training step instead (SGD with momentum, cross-entropy, BatchNorm in train
mode), eager against patch, batch 8 unless --batches says otherwise.

--quick (smoke run): ResNet-18 and MobileNetV2 at batch 1, 3 rounds, fewer calls per process.
Every engine gets the same threads (torch.set_num_threads / fastconv.set_num_threads /
intra_op_num_threads / INFERENCE_NUM_THREADS). ONNX Runtime and OpenVINO read one ONNX export of
each net (torch.onnx.export, made by the parent in a temporary folder). Needs the `bench` extra
(onnx, onnxruntime, openvino) for those engines; without them they are skipped, with a note.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # torch_zoo: the twins live with the tests

NETS = ("alexnet", "vgg16", "resnet18", "resnet50", "mobilenet_v2")
ENGINES = ("eager", "compile", "patch", "onnxruntime", "openvino_f32", "openvino_default")
NEEDS = {"onnxruntime": ("onnx", "onnxruntime"), "openvino_f32": ("onnx", "openvino"),
         "openvino_default": ("onnx", "openvino")}
TRAIN_ENGINES = ("eager", "patch")
IMAGE = 224


def model_and_input(net, batch):
    import torch
    import torch_zoo
    model = torch_zoo.randomize_batchnorm(torch_zoo.build(net, seed=0), seed=0).eval()
    x = torch.randn(batch, 3, IMAGE, IMAGE, generator=torch.Generator().manual_seed(1))
    return model, x


# ---- worker: one engine, one net, one batch size; prints its median call time

def torch_runner(engine, net, batch, threads, train=False):
    import torch
    torch.set_num_threads(threads)
    model, x = model_and_input(net, batch)
    if train:
        model.train()
    if engine != "eager":
        import fastconv
        import fastconv.torch as ft
        fastconv.set_num_threads(threads)
        model = torch.compile(model, backend=ft.compile_backend) if engine == "compile" else ft.patch(model)
    if train:  # one SGD step: forward, cross-entropy, backward, update (BatchNorm on batch statistics)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        labels = torch.randint(0, 1000, (batch,), generator=torch.Generator().manual_seed(2))

        def step():
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), labels).backward()
            opt.step()
        return step

    def run():
        with torch.inference_mode():
            return model(x)
    return run


def onnx_runner(engine, net, batch, threads, onnx_path):
    _, x = model_and_input(net, batch)
    x = x.numpy()
    if engine == "onnxruntime":
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
        return lambda: session.run(None, {"x": x})
    import openvino as ov
    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
    if engine == "openvino_f32":
        config["INFERENCE_PRECISION_HINT"] = "f32"
    compiled = ov.Core().compile_model(onnx_path, "CPU", config)
    request = compiled.create_infer_request()
    return lambda: request.infer({0: x})


def worker(args):
    if args.worker in ("onnxruntime", "openvino_f32", "openvino_default"):
        run = onnx_runner(args.worker, args.net, args.batch, args.threads, args.onnx)
    else:
        run = torch_runner(args.worker, args.net, args.batch, args.threads, args.train)
    from fastconv.timing import median_call_time, report_seconds, settle
    settle(run, max_seconds=20 if args.quick else 60)
    report_seconds(median_call_time(run, args.calls))


# ---- parent

def export_onnx(net, folder):
    import torch
    model, x = model_and_input(net, 1)
    path = str(Path(folder) / f"{net}.onnx")
    torch.onnx.export(model, (x,), path, dynamo=False, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, opset_version=17)
    return path


def openvino_default_precision(onnx_path, threads):
    import openvino as ov
    compiled = ov.Core().compile_model(onnx_path, "CPU", {"INFERENCE_NUM_THREADS": threads})
    return compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()  # "bf16", "f32", ...


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nets", nargs="+", choices=NETS, default=None)
    p.add_argument("--batches", nargs="+", type=int, default=None)
    p.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="ResNet-18 and MobileNetV2, batch 1, fewer calls")
    p.add_argument("--train", action="store_true",
                   help="time a training step (SGD, cross-entropy) instead of a forward: engines eager and patch "
                        "(the compile backend trains through the same patched modules), batch 8 by default")
    p.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    p.add_argument("--net", help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    p.add_argument("--calls", type=int, help=argparse.SUPPRESS)
    p.add_argument("--onnx", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)

    # the workers (and this process) use this checkout's fastconv
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    sys.path.insert(0, str(REPO))
    from fastconv.timing import ensure_fast_allocator, machine_line, markdown_table, time_in_processes
    ensure_fast_allocator()
    nets = args.nets or (["resnet18", "mobilenet_v2"] if args.quick else list(NETS))
    batches = args.batches or ([1] if args.quick else [8] if args.train else [1, 8])
    missing = {e: [m for m in NEEDS.get(e, ()) if importlib.util.find_spec(m) is None] for e in args.engines}
    if args.train and not set(args.engines) & set(TRAIN_ENGINES):
        p.error(f"--train times the engines {' and '.join(TRAIN_ENGINES)}; got --engines {' '.join(args.engines)}")
    engines = [e for e in args.engines if not missing[e] and (not args.train or e in TRAIN_ENGINES)]
    for e in args.engines:
        if missing[e]:
            print(f"skipping {e}: {', '.join(missing[e])} not installed (pip install '.[bench]')", file=sys.stderr)
    labels = {e: e for e in engines}
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for net in nets:
            onnx_path = export_onnx(net, folder) if any(e in NEEDS for e in engines) else ""
            if "openvino_default" in engines:
                labels["openvino_default"] = f"openvino_default ({openvino_default_precision(onnx_path, args.threads)})"
            for batch in batches:
                calls = (3 if args.quick else 5) if batch > 1 or net == "vgg16" else (5 if args.quick else 10)
                commands = {e: [sys.executable, __file__, "--worker", e, "--net", net, "--batch", str(batch),
                                "--threads", str(args.threads), "--calls", str(calls), "--onnx", onnx_path]
                            + (["--quick"] if args.quick else []) + (["--train"] if args.train else [])
                            for e in engines}
                print(f"[bench_zoo] {net} batch {batch}", file=sys.stderr, flush=True)
                result = time_in_processes(commands, rounds=args.rounds, timeout=1800)
                row = [net, batch]
                for e in engines:
                    t = result.times[e]
                    cell = f"{statistics.median(t) * 1e3:.1f} ({min(t) * 1e3:.1f}-{max(t) * 1e3:.1f})"
                    if e != "eager" and "eager" in engines:
                        r = result.ratio("eager", e)
                        cell += f" {r.median:.2f}x"
                    row.append(cell)
                rows.append(row)
    what = "training step (SGD, cross-entropy, train-mode BatchNorm)" if args.train else "forward"
    print(f"Machine: {machine_line(args.threads)}. ms per {what}, median (min-max) over {args.rounds} rounds, "
          f"each engine in its own process; Nx = torch eager time / engine time (median of per-round ratios).\n")
    print(markdown_table(["net", "batch"] + [labels[e] for e in engines], rows))


if __name__ == "__main__":
    main()
