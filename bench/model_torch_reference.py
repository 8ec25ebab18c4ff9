#!/usr/bin/python3
"""PyTorch anchor for bench/model.ts (run with Debian's /usr/bin/python3).

Times one loss+gradient of the same architectures as @phalanx/model (logistic, MLP 784-128-10,
CNN conv5x5x8-pool-conv5x5x16-pool-dense10, linear regression d=100) on random data, batch 32
and 128, one thread (tfjs-wasm in Node is single-threaded, so one thread is the fair anchor).
Prints one JSON object: {"torch": version, "threads": 1, "models": {name: {batch: median_ms}}}.
With arguments `MODEL BATCH` it times only that cell, so bench/model.ts can interleave the anchor
with its own measurements (the machine is shared: cells timed minutes apart see different load).
"""
import json
import os
import sys
import statistics
import time

# torch.set_num_threads does not reach OpenBLAS's own thread pool (Debian's torch calls
# libblas.so.3, which may be OpenBLAS): without this the "one thread" anchor ran its matrix
# products on both cores. Read by OpenBLAS when it loads, so set before importing torch.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.nn.functional as F

torch.set_num_threads(1)
torch.manual_seed(0)


def timed(fn, reps=30, budget_s=1.0):
    fn()
    samples = []
    start_all = time.perf_counter()
    while len(samples) < reps and (time.perf_counter() - start_all < budget_s or len(samples) < 3):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def params(*shapes):
    return [torch.randn(*s, requires_grad=True) * 0.05 for s in shapes]


def logistic(p, x, y):
    return F.cross_entropy(x.view(len(x), -1) @ p[0] + p[1], y)


def mlp(p, x, y):
    h = F.relu(x.view(len(x), -1) @ p[0] + p[1])
    return F.cross_entropy(h @ p[2] + p[3], y)


def cnn(p, x, y):
    h = F.max_pool2d(F.relu(F.conv2d(x, p[0], p[1], padding=2)), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, p[2], p[3], padding=2)), 2)
    return F.cross_entropy(h.reshape(len(x), -1) @ p[4] + p[5], y)


def linear(p, x, y):
    return 0.5 * ((x @ p[0] + p[1]).squeeze(1) - y).pow(2).mean()


models = {
    "logistic": (logistic, [(784, 10), (10,)], (1, 28, 28), True),
    "mlp": (mlp, [(784, 128), (128,), (128, 10), (10,)], (1, 28, 28), True),
    "cnn": (cnn, [(8, 1, 5, 5), (8,), (16, 8, 5, 5), (16,), (784, 10), (10,)], (1, 28, 28), True),
    "linear": (linear, [(100, 1), (1,)], (100,), False),
}

only = (sys.argv[1], int(sys.argv[2])) if len(sys.argv) == 3 else None
result = {"torch": torch.__version__, "threads": 1, "models": {}}
for name, (fn, shapes, sample, classify) in models.items():
    if only and only[0] != name:
        continue
    p = [t.detach().requires_grad_(True) for t in params(*shapes)]
    result["models"][name] = {}
    for batch in (32, 128):
        if only and only[1] != batch:
            continue
        x = torch.rand(batch, *sample)
        y = torch.randint(0, 10, (batch,)) if classify else torch.randn(batch)

        def step():
            loss = fn(p, x, y)
            grads = torch.autograd.grad(loss, p)
            torch.cat([g.reshape(-1) for g in grads]).numpy()

        result["models"][name][str(batch)] = timed(step)
print(json.dumps(result))
