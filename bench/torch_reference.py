#!/usr/bin/python3
"""PyTorch reference timings for bench/aggregation.ts (run with Debian's /usr/bin/python3).

The fastest PyTorch formulation of each rule, on an n×d float32 tensor (seeded), two threads.
Where two formulations compete (torch.median vs a sort for the median, topk vs sort for the
trimmed mean) both are timed and the faster one is the anchor.
Prints one JSON object: {"torch": version, "threads": 2, "floor_ms": ..., "rules": {name: {...}}}.
"""
import argparse
import json
import os
import statistics
import time

# Two threads for OpenBLAS's own pool too, which torch.set_num_threads(2) below does not reach
# (OpenBLAS reads this when it loads, so it is set before torch is imported).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")

import torch  # noqa: E402


def timed(fn, reps):
    start = time.perf_counter()
    fn()  # warm-up: allocator, kernels
    warm = (time.perf_counter() - start) * 1000
    if warm > 2000:
        return warm  # multi-second calls: warm-up overhead is noise; keeps the bench within minutes
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def distances(x):
    gram = x @ x.T  # one matrix product for all pairwise dot products
    norms = gram.diagonal()
    return (norms[:, None] + norms[None, :] - 2 * gram).clamp_(min=0)


def distances_onednn(x):
    # oneDNN's own GEMM (the torch build's generic BLAS is the slow reference one); the
    # conversion to the oneDNN layout is part of the cost, since inputs arrive as dense tensors.
    xm = x.to_mkldnn()
    gram = torch._C._nn.mkldnn_linear(xm, xm, None).to_dense()
    norms = gram.diagonal()
    return (norms[:, None] + norms[None, :] - 2 * gram).clamp_(min=0)


def krum_scores(d2, f):
    n = d2.shape[0]
    # n−f−1 smallest per row include the zero self-distance: the n−f−2 nearest others.
    return d2.topk(n - f - 1, dim=1, largest=False).values.sum(dim=1)


def krum(x, f, dist=distances):
    return x[krum_scores(dist(x), f).argmin()].clone()


def multi_krum(x, f, dist=distances):
    scores = krum_scores(dist(x), f)
    return x[scores.topk(x.shape[0] - f, largest=False).indices].mean(dim=0)


def median_sort(x):
    n = x.shape[0]
    s = x.sort(dim=0).values
    return s[(n - 1) // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def median_torch(x):
    # torch.median returns the lower middle value for even n (not the mean of the two).
    return x.median(dim=0).values


def trimmed_sort(x, f):
    return x.sort(dim=0).values[f : x.shape[0] - f].mean(dim=0)


def trimmed_topk(x, f):
    n = x.shape[0]
    if f == 0:
        return x.mean(dim=0)
    top = x.topk(f, dim=0).values.sum(dim=0)
    bottom = x.topk(f, dim=0, largest=False).values.sum(dim=0)
    return (x.sum(dim=0) - top - bottom) / (n - 2 * f)


def closest_to_median(x, drop):
    keep = x.shape[0] - drop
    med = median_sort(x)
    idx = (x - med).abs().topk(keep, dim=0, largest=False).indices
    return x.gather(0, idx).mean(dim=0)


def bulyan(x, f, dist=distances):
    d2 = dist(x)
    n = x.shape[0]
    remaining = list(range(n))
    selected = []
    for _ in range(n - 2 * f):
        sub = d2[remaining][:, remaining]
        k = min(len(remaining) - 1, max(1, len(remaining) - f - 2))
        scores = sub.topk(k + 1, dim=1, largest=False).values.sum(dim=1)
        pick = int(scores.argmin())
        selected.append(remaining.pop(pick))
    return closest_to_median(x[selected], 2 * f)


def geometric_median(x, nu=0.1, iterations=3):
    z = torch.zeros(x.shape[1])
    for _ in range(iterations):
        beta = 1 / (x - z).norm(dim=1).clamp(min=nu)
        z = (beta @ x) / beta.sum()
    return z


def centered_clipping(x, tau=1.0, iterations=3):
    v = torch.zeros(x.shape[1])
    for _ in range(iterations):
        diff = x - v
        scale = (tau / diff.norm(dim=1)).clamp(max=1)
        v = v + (scale @ diff) / x.shape[0]
    return v


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--d", type=int, required=True)
    parser.add_argument("--f", type=int, required=True)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--rules", default="all")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--variants", default="", help="comma-separated formulations to keep (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    x = torch.randn(args.n, args.d, dtype=torch.float32)
    f = args.f
    candidates = {
        "average": {"mean": lambda: x.mean(dim=0)},
        "median": {"sort": lambda: median_sort(x), "torch.median (lower middle)": lambda: median_torch(x)},
        "trimmedMean": {"sort": lambda: trimmed_sort(x, f), "topk": lambda: trimmed_topk(x, f)},
        "meamed": {"sort+topk": lambda: closest_to_median(x, f)},
        "geometricMedian": {"weiszfeld": lambda: geometric_median(x)},
        "krum": {"gram matmul": lambda: krum(x, f), "gram oneDNN": lambda: krum(x, f, distances_onednn)},
        "multiKrum": {
            "gram matmul": lambda: multi_krum(x, f),
            "gram oneDNN": lambda: multi_krum(x, f, distances_onednn),
        },
        "bulyan": {
            "gram matmul + sort": lambda: bulyan(x, f),
            "gram oneDNN + sort": lambda: bulyan(x, f, distances_onednn),
        },
        "centeredClipping": {"iterations": lambda: centered_clipping(x)},
    }
    wanted = list(candidates) if args.rules == "all" else args.rules.split(",")
    results = {}
    for name in wanted:
        if name not in candidates:
            continue
        keep = [v for v in args.variants.split(",") if v]
        chosen = {label: fn for label, fn in candidates[name].items() if not keep or label in keep}
        variants = {label: timed(fn, args.reps) for label, fn in (chosen or candidates[name]).items()}
        best = min(variants, key=variants.get)
        results[name] = {"ms": variants[best], "formulation": best, "variants": variants}
    floor = timed(lambda: x.sum(), args.reps)
    print(json.dumps({
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "blas": blas_libraries(),
        "floor_ms": floor,
        "rules": results,
    }))


def blas_libraries():
    """The BLAS this process loaded (Debian's torch links libblas.so.3, which the alternatives
    system points at netlib's reference BLAS or at OpenBLAS): the Gram anchor's speed hangs on it,
    4-27x between the two on this machine."""
    x = torch.randn(4, 4)
    (x @ x.T).sum()
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "blas" in line.lower() and "/" in line}
    return sorted(paths)


if __name__ == "__main__":
    main()
