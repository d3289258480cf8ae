"""Data-parallel training of a LeNet-5 whose convolutions and poolings run on fastconv's kernels,
scaled out with torch.distributed (DistributedDataParallel): fastconv adds no engine of its own.

Each process trains a replica on its shard of every global batch; DDP averages the gradients,
so all replicas stay identical and follow single-process training on the combined batch
(--batch-size is per process: 2 processes x 32 = one process x 64).

One machine, 2 processes on the CPU (gloo):
    torchrun --nproc-per-node 2 examples/ddp_lenet.py --root DIR
Several machines: run on each, with the first machine's address as the rendezvous endpoint:
    torchrun --nnodes 2 --nproc-per-node 2 --rdzv-backend c10d --rdzv-id lenet \\
             --rdzv-endpoint HOST0:29500 examples/ddp_lenet.py --root DIR
GPUs (NCCL, one GPU per process):
    torchrun --nproc-per-node 4 examples/ddp_lenet.py --root DIR --device cuda

DIR holds the MNIST IDX files (gzipped or not); --download fetches them. torchrun sets RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; any launcher that sets them works.
"""
import argparse
import os
from collections import OrderedDict

import torch
import torch.distributed as dist
from safetensors.torch import save_file
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import fastconv
import fastconv.torch
from fastconv import data


def lenet5():
    """LeNet-5 for 1x32x32 digits (ReLU, max-pool), in plain torch.nn."""
    return nn.Sequential(OrderedDict(
        features=nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                               nn.MaxPool2d(2, 2)),
        flatten=nn.Flatten(),
        classifier=nn.Sequential(nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", required=True, help="folder with the MNIST IDX files")
    p.add_argument("--split", default="train", choices=("train", "test"))
    p.add_argument("--download", action="store_true", help="fetch missing MNIST files into --root")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--steps", type=int, default=None, help="stop after this many steps (default: all epochs)")
    p.add_argument("--batch-size", type=int, default=32, help="per process")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--threads", type=int, default=None, help="CPU threads per process (torch and fastconv)")
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--save", default=None,
                   help="safetensors file for the trained weights, written by rank 0; a {rank} in the "
                        "name makes every rank write its own replica")
    return p.parse_args(argv)


def make_loader(args, rank, world):
    """This rank's shard of MNIST: every rank draws the same permutation (seed + epoch) and takes
    every world-th sample of it, so one step's shards together are one contiguous slice of it."""
    images, labels = data.mnist(args.root, args.split, download=args.download and rank == 0, dtype="float32", pad=2)
    dataset = TensorDataset(torch.from_numpy(images), torch.from_numpy(labels.astype("int64")))
    sampler = DistributedSampler(dataset, world, rank, shuffle=True, seed=args.seed, drop_last=True)
    return sampler, DataLoader(dataset, batch_size=args.batch_size, sampler=sampler, drop_last=True)


def build_model(seed):
    """The patched LeNet-5, initialised from seed (DDP also broadcasts rank 0's weights). force=True:
    every layer fastconv can run does, whatever patch()'s cost rule says, since this example is
    fastconv's kernels under DDP."""
    torch.manual_seed(seed)
    return fastconv.torch.patch(lenet5(), force=True)


def train(model, sampler, loader, args, device, verbose=True):
    """SGD with momentum over --epochs (or --steps); model may be wrapped in DDP. Returns the steps run."""
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    step = 0
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        for x, y in loader:
            if args.steps is not None and step >= args.steps:
                return step
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()  # under DDP, the gradients are all-reduced (averaged) here
            optimizer.step()
            step += 1
            if verbose and step % args.log_every == 0:
                print(f"epoch {epoch} step {step}: loss {loss.item():.4f} (this rank's shard)", flush=True)
    return step


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
        fastconv.set_num_threads(args.threads)
    dist.init_process_group("nccl" if args.device == "cuda" else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    if args.device == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")

    sampler, loader = make_loader(args, rank, world)
    model = build_model(args.seed).to(device)
    ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    steps = train(ddp, sampler, loader, args, device, verbose=rank == 0)

    if args.save and ("{rank}" in args.save or rank == 0):
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
                  args.save.format(rank=rank))
    if rank == 0:
        print(f"trained {steps} steps on {world} process(es), global batch {args.batch_size * world}", flush=True)
    # Every rank reaches this point before any tears down: rank 0 hosts the rendezvous store, and a
    # rank still tearing down its process group after rank 0 had exited hung (1 run in 3 or so).
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
