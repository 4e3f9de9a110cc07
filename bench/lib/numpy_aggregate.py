"""NumPy baseline for bench section 2: FedAvg's weighted sum of K float32 updates of P
parameters, timed the way bench/run.js times Tessera's FedAvg.aggregate. Prints one JSON line.

    python3 bench/lib/numpy_aggregate.py --k 50 --p 1000000 --reps 5

Variants:
  loop64  the same computation as FedAvg.aggregate: a float64 accumulator, acc += n_k * delta_k
          for each client, then global + acc / sum(n) as float32 (the reference for the ratio);
  gemv32  n @ D with D the K x P float32 matrix (one OpenBLAS sgemv call, float32 accumulation;
          single-threaded: run.js sets OPENBLAS_NUM_THREADS=1). A lower bound on what a
          memory-bound weighted sum costs, not the same precision.
"""
import argparse
import json
import time

import numpy as np

p = argparse.ArgumentParser()
p.add_argument("--k", type=int, required=True)
p.add_argument("--p", type=int, required=True)
p.add_argument("--reps", type=int, default=5)
args = p.parse_args()
K, P = args.k, args.p

rng = np.random.default_rng(0)
D = (rng.standard_normal((K, P), dtype=np.float32) * np.float32(0.01))
ns = rng.integers(1, 600, size=K)
g = rng.standard_normal(P, dtype=np.float32)


def loop64():
    acc = np.zeros(P, dtype=np.float64)
    tmp = np.empty(P, dtype=np.float64)
    for k in range(K):
        np.multiply(D[k], float(ns[k]), out=tmp)
        acc += tmp
    return (g + acc * (1.0 / ns.sum())).astype(np.float32)


nsf = ns.astype(np.float32)


def gemv32():
    return g + (nsf @ D) * np.float32(1.0 / ns.sum())


def timeit(fn):
    fn()  # warm-up: page faults of the outputs
    times = []
    for _ in range(args.reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return sorted(times)


out = {"k": K, "p": P, "numpy": np.__version__}
for name, fn in (("loop64", loop64), ("gemv32", gemv32)):
    ts = timeit(fn)
    med = ts[len(ts) // 2]
    out[name] = {
        "medianSeconds": med,
        "minSeconds": ts[0],
        "usPerParamUpdate": med * 1e6 / (K * P),
        "gbPerSec": K * P * 4 / med / 1e9,
    }
ref = loop64().astype(np.float64)
out["maxAbsDiffGemvVsLoop"] = float(np.max(np.abs(gemv32().astype(np.float64) - ref)))
print(json.dumps(out))
