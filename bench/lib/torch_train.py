"""PyTorch CPU baseline for bench section 1: the same mlp / cnn presets as Tessera's
(server/src/models.ts buildPreset), batch 32, Adam 1e-3, on the same synthetic data file.
Prints one JSON line.

    python3 bench/lib/torch_train.py --preset cnn --threads 1 --data /tmp/x --target-seconds 5

Data file: n x 784 float32 pixels, then n int32 labels (written by bench/run.js).
Thread count: torch.set_num_threads(t); run.js also sets OMP_NUM_THREADS and
OPENBLAS_NUM_THREADS to t in the environment so OpenBLAS (dense layers) and oneDNN
(convolutions) use the same count.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
from torch import nn

p = argparse.ArgumentParser()
p.add_argument("--preset", choices=["mlp", "cnn"], required=True)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--data", required=True)
p.add_argument("--batch", type=int, default=32)
p.add_argument("--target-seconds", type=float, default=5.0)
p.add_argument("--min-batches", type=int, default=4)
p.add_argument("--trials", type=int, default=1)
args = p.parse_args()

torch.set_num_threads(args.threads)
torch.set_num_interop_threads(1)
torch.manual_seed(0)


def build(preset):
    """Layer for layer what buildPreset builds (tfjs is NHWC, torch NCHW: same parameter count)."""
    if preset == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10),
    )


raw = np.fromfile(args.data, dtype=np.uint8)
n = raw.size // (784 * 4 + 4)
xs = torch.from_numpy(raw[: n * 784 * 4].view(np.float32).reshape(n, 1, 28, 28).copy())
ys = torch.from_numpy(raw[n * 784 * 4 :].view(np.int32).astype(np.int64))

model = build(args.preset)
params = sum(p.numel() for p in model.parameters())
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
# The tfjs model ends in softmax + categorical cross-entropy; CrossEntropyLoss on logits is the same function.
loss_fn = nn.CrossEntropyLoss()


def steps(count, state):
    """`count` optimizer steps over shuffled batches (a fresh permutation each epoch, like fit(shuffle))."""
    last = None
    for _ in range(count):
        if state["pos"] + args.batch > n:
            state["perm"] = torch.randperm(n)
            state["pos"] = 0
        idx = state["perm"][state["pos"] : state["pos"] + args.batch]
        state["pos"] += args.batch
        x, y = xs[idx], ys[idx]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        last = loss
    return float(last)


state = {"perm": torch.randperm(n), "pos": 0}
model.train()
t = time.perf_counter()
steps(5, state)  # warm-up: allocator, oneDNN primitive cache
warm = (5 * args.batch) / (time.perf_counter() - t)
t = time.perf_counter()
steps(3, state)
est = (3 * args.batch) / (time.perf_counter() - t)
batches = max(args.min_batches, int(est * args.target_seconds / args.batch))
# Several timed windows, the fastest reported: on a shared machine noise only slows a run down.
# A window shorter than half the target (the estimate was low) is a further warm-up: it is
# discarded and the window resized to the target at the speed it measured.
trials = []
for _ in range(20):
    if len(trials) >= args.trials:
        break
    t = time.perf_counter()
    loss = steps(batches, state)
    dt = time.perf_counter() - t
    if dt < args.target_seconds / 2:
        batches = max(2 * batches, int(batches * args.target_seconds / dt))
        continue
    trials.append((batches * args.batch, dt))
best_samples, seconds = max(trials, key=lambda t: t[0] / t[1])


def blas_libraries():
    """BLAS/LAPACK shared objects actually mapped into this process (torch links the generic libblas.so.3)."""
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                if any(k in path for k in ("blas", "lapack", "mkl", "dnnl")):
                    libs.add(os.path.realpath(path))
    except OSError:
        pass
    return sorted(libs)


def sgemm_gflops():
    """A 512x512 float32 matmul on 1 thread: ~1-3 GFLOP/s means the reference BLAS, tens to hundreds an optimized one."""
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    a, b = torch.randn(512, 512), torch.randn(512, 512)
    a @ b
    reps = 10
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    dt = time.perf_counter() - t0
    torch.set_num_threads(prev)
    return reps * 2 * 512**3 / dt / 1e9


libs = blas_libraries()
gflops = sgemm_gflops()
print(json.dumps({
    "preset": args.preset,
    "threads": args.threads,
    "torchThreads": torch.get_num_threads(),
    "batch": args.batch,
    "params": params,
    "samples": best_samples,
    "seconds": seconds,
    "samplesPerSec": best_samples / seconds,
    "warmupSamplesPerSec": warm,
    "trials": [n / t for n, t in trials],
    "loss": loss,
    "torch": torch.__version__,
    "blasLibraries": libs,
    "openblas": any("openblas" in l for l in libs),
    "sgemmGflops1Thread": gflops,
    "mkldnn": torch.backends.mkldnn.is_available(),
}))
