"""Memory of a 200-iteration attention training run: peak RSS, and RSS growth from iteration 100 to 200.

    python -m benchmarks.memory [--quick] [--threads 1,default] [--iters 200]

Each framework trains alone in a fresh process at each thread setting (processes.py: neither sees the
other's allocations, imports or threads); the child reads its own peak RSS (VmHWM; resource.getrusage where /proc is missing, see
`peak_rss_mb`) and its current RSS from /proc/self/statm
at the halfway point and at the end, and reports them as one JSON line. Same model, shapes, data and
optimizer as the attention row of benchmarks/train_step.py. "after setup" is the RSS once the
framework is imported and the model built, before the first iteration (library footprint).
Targets (issue 6): peak RSS <= PyTorch's; no growth between iteration 100 and 200.
"""
from __future__ import annotations

import os
import resource
import sys

from .common import fmt_num, parser, print_table
from .processes import dispatch


def current_rss_mb() -> float | None:
    """Resident set size now, in MiB (Linux /proc), or None where unavailable."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    except (OSError, ValueError, IndexError):
        return None


def live_heap_mb() -> float | None:
    """Bytes malloc holds for live allocations (small blocks + mmapped arrays), in MiB, from glibc's
    mallinfo2; None elsewhere. Unlike RSS it does not move when the allocator trims or keeps freed
    pages, so it shows whether anything (a graph, a cache) really outlives an iteration."""
    try:
        import ctypes

        class MallInfo2(ctypes.Structure):
            _fields_ = [(name, ctypes.c_size_t) for name in
                        ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                         "uordblks", "fordblks", "keepcost")]
        libc = ctypes.CDLL(None)
        libc.mallinfo2.restype = MallInfo2
        info = libc.mallinfo2()
        return (info.uordblks + info.hblkhd) / 2 ** 20
    except (OSError, AttributeError):
        return None


def peak_rss_mb() -> float:
    """This process's peak RSS in MiB.

    On Linux, getrusage's ru_maxrss survives execve: a child started by a parent holding 300 MiB
    (torch loaded) reports at least that. VmHWM in /proc/self/status is the peak of this process
    image alone, so it is preferred; getrusage is the fallback elsewhere."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2 ** 20 if sys.platform == "darwin" else peak / 1024   # bytes on macOS, KiB on Linux


def measure(bench, iters: int) -> dict:
    """In one child process: train the attention model `iters` iterations; return the RSS figures."""
    from .train_step import (WORKLOADS, build_ours, build_torch, make_batch, ours_train_step,
                             quick_workload, torch_train_step)
    w = next(w for w in WORKLOADS if w.model == "attention")
    w = quick_workload(w) if bench.quick else w
    xs, ts = make_batch(w)
    model = build_ours(w)
    if bench.framework == "torch":
        torch = bench.torch
        step = torch_train_step(torch, build_torch(torch, w, model), xs, ts)
        del model
    else:
        step = ours_train_step(model, xs, ts)
    result = {"after_setup": current_rss_mb()}
    half = iters // 2
    for i in range(1, iters + 1):
        step()
        if i == half:
            result["at_half"], result["live_half"] = current_rss_mb(), live_heap_mb()
    result["at_end"], result["live_end"] = current_rss_mb(), live_heap_mb()
    result["peak"] = peak_rss_mb()
    return {"attention": result}


def report(bench, all_results, iters: int):
    for setting in bench.settings:
        print(all_results.threads_text(setting))
        one_setting(bench, {fw: all_results.children(setting, fw)[0]["cases"]["attention"]
                            for fw in bench.frameworks}, iters)
    return all_results


def one_setting(bench, results: dict, iters: int):
    """The table and verdicts of one thread setting (the first process of each framework)."""
    half = iters // 2
    rows = []
    for fw, r in results.items():
        growth = None if r["at_end"] is None or r["at_half"] is None else r["at_end"] - r["at_half"]
        live = None if r.get("live_end") is None else r["live_end"] - r["live_half"]
        rows.append([fw, fmt_num(r["after_setup"]), fmt_num(r["at_half"]), fmt_num(r["at_end"]),
                     fmt_num(growth, 1), fmt_num(live, 1), fmt_num(r["peak"]),
                     fmt_num(None if r["after_setup"] is None else r["peak"] - r["after_setup"])])
    print_table(["framework", "after setup", f"at iter {half}", f"at iter {iters}",
                 f"growth {half}->{iters}", f"live heap growth {half}->{iters}", "peak RSS",
                 "peak - setup"], rows,
                title=f"Attention training, {iters} iterations, fresh process each (MiB)")
    if "torch" in results:
        ours, theirs = results["ours"]["peak"], results["torch"]["peak"]
        print(f"peak RSS ours/torch: {ours / theirs:.2f}x (target <= 1.0x: "
              f"{'met' if ours <= theirs else 'NOT met'})")
    r = results["ours"]
    if r.get("live_end") is not None:
        live = r["live_end"] - r["live_half"]
        # RSS moves with the allocator's trimming; the live heap is what a leak would grow
        print(f"ours live-heap growth {half}->{iters}: {live:+.1f} MiB (target: none; "
              f"{'met' if abs(live) <= 2.0 else 'NOT met'} at a 2 MiB tolerance)")
    elif r["at_end"] is not None and r["at_half"] is not None:
        growth = r["at_end"] - r["at_half"]
        # a few MiB of allocator noise is not a leak; a graph kept alive would grow every iteration
        print(f"ours RSS growth {half}->{iters}: {growth:+.1f} MiB (target: none; "
              f"{'met' if growth <= 2.0 else 'NOT met'} at a 2 MiB tolerance)")
    return results


def main(argv=None):
    p = parser(__doc__.splitlines()[0], repeats=1, pairs=1)
    p.add_argument("--iters", type=int, default=None, help="training iterations (default 200)")
    args = p.parse_args(argv)
    iters = args.iters or (20 if args.quick else 200)
    if iters < 2:
        raise SystemExit(f"--iters must be >= 2, got {iters}")
    return dispatch(__spec__.name, args, argv, lambda bench: measure(bench, iters),
                    lambda bench, results: report(bench, results, iters))


if __name__ == "__main__":
    main()
