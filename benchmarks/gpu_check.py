"""GPU check: the op table, a training epoch and a train step's speed on a CUDA device, in one command.

    pip install -e '.[gpu]'              # CuPy (and Hypothesis, which draws the op table's inputs)
    python -m benchmarks.gpu_check       # under 5 minutes; exit status 0 when every check passes

1. **Op table on the device**: every op of `tinygrad_s2s.testing.op_table.OPS` (forward and every input
   gradient, float64) on `--examples` inputs drawn from its own strategy (derandomized: the same
   inputs on every run), against the CPU result.
2. **Attention on date, one epoch**: the same model (same seed, same weights), the same batch order,
   Adam + clipping at 5, once on the CPU and once on the device; the two per-step loss curves are
   compared (the first steps must agree to float32 round-off, the mean loss of the last tenth within
   2%), and so are the exact-match accuracies on the test split.
3. **Train step vs PyTorch CUDA**: one iteration (forward, backward, clip, Adam) of attention at the
   date shapes of `benchmarks/train_step.py`, ours on the device and PyTorch's twin on CUDA, each in
   its own process (the median of `--repeats` timed steps, each ending in a `.item()` so the device
   has finished). Where torch with CUDA is not importable, the table says so.
4. **Data-parallel on the device** (with the `mpi` extra): 20 Adam steps with clipping of the tiny
   test model in float64, `mpiexec -n 2` against one process, on the device; the parameters must agree
   within 1e-10, and the table says how the gradients were summed (NCCL where every rank has a GPU of
   its own, host staging through MPI where ranks share one). Without mpi4py or mpiexec it says skipped.

It ends with one summary table. `--fake-device` runs everything on the strict fake GPU
(`tinygrad_s2s/testing/fake_device.py`, NumPy underneath, refusing silent host arrays): CI checks the
script this way, on CPUs; its timings mean nothing. `--quick` shrinks every size (CI, smoke runs).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):    # `python benchmarks/gpu_check.py` works as well as `python -m ...`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from benchmarks.common import fmt_time, positive_int, print_table, time_alternating  # noqa: E402
from benchmarks.train_step import (WORKLOADS, build_ours, build_torch, make_batch,  # noqa: E402
                                   ours_train_step, quick_workload, torch_train_step)

REPO_ROOT = Path(__file__).resolve().parent.parent
MARK = "GPU-CHECK-RESULT "
SEED = 0
BATCH = 128
LR = 1e-3
MAX_GRAD = 5.0
FIRST_STEPS = 20            # the loss curves' first steps must agree to round-off ...
FIRST_STEPS_RTOL = 1e-3
LAST_TENTH_RTOL = 0.02      # ... and their last tenth's mean loss within 2%
ATTENTION = next(w for w in WORKLOADS if w.model == "attention")


# ---------------------------------------------------------------- 1. op table
def check_ops(device: str, examples: int) -> list[dict]:
    """Every op of the table on `examples` derandomized inputs: output and gradients on `device`
    against the CPU's (float64, tolerance 1e-10). One dict per op: name, ok, error."""
    from hypothesis import HealthCheck, given, settings

    import tinygrad_s2s as tg
    from tinygrad_s2s.testing.op_table import OPS

    def run(spec, arrays, kw, on):
        xs = [tg.Tensor(a.astype(np.float64)).to(on).requires_grad_() for a in arrays]
        out = spec.fn(*xs, **kw)
        g = np.random.default_rng(0).standard_normal(out.shape)
        out.backward(tg.Tensor(g).to(on))
        return out, xs

    def checker(spec):
        @settings(max_examples=examples, derandomize=True, database=None, deadline=None, print_blob=False,
                  suppress_health_check=list(HealthCheck))
        @given(spec.inputs)
        def check(example):
            arrays, kw = example
            cpu_out, cpu_xs = run(spec, arrays, kw, "cpu")
            out, xs = run(spec, arrays, kw, device)
            if out.device != device:
                raise AssertionError(f"{spec.name}: output on {out.device}, not {device}")
            np.testing.assert_allclose(out.numpy(), cpu_out.numpy(), rtol=1e-10, atol=1e-10,
                                       err_msg=f"{spec.name}: forward differs from the CPU's")
            for i, (x, c) in enumerate(zip(xs, cpu_xs)):
                if x.grad is None:
                    raise AssertionError(f"{spec.name}: input {i} got no gradient on {device}")
                if x.grad.device != device:
                    raise AssertionError(f"{spec.name}: gradient {i} on {x.grad.device}, not {device}")
                np.testing.assert_allclose(x.grad.numpy(), c.grad.numpy(), rtol=1e-10, atol=1e-10,
                                           err_msg=f"{spec.name}: gradient of input {i} differs from the CPU's")
        return check

    rows = []
    for spec in OPS:
        check = checker(spec)
        try:
            check()
            rows.append({"name": spec.name, "ok": True, "error": ""})
        except Exception as exc:   # report every op, not only the first failure
            text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
            rows.append({"name": spec.name, "ok": False, "error": f"{type(exc).__name__}: {text[:400]}"})
    return rows


# ---------------------------------------------------------------- 2. one epoch, CPU vs device
def load_date(quick: bool):
    """The date task as the book trains it (questions reversed); a small slice with --quick."""
    from tinygrad_s2s.data import load_dataset
    ds = load_dataset("date", reverse=True)
    return ds.limit(512, 256) if quick else ds


def train_one_epoch(device: str, ds, w) -> dict:
    """Attention on `ds` for one epoch on `device` from seed SEED: per-step losses, seconds, and the
    exact-match accuracy of greedy decoding on the test split."""
    import tinygrad_s2s as tg
    from tinygrad_s2s.data import batch_indices
    tg.manual_seed(SEED)
    model = tg.create_model("attention", len(ds.vocab), wordvec_size=w.D, hidden_size=w.H)
    if device != "cpu":
        model.to(device)
    params = model.parameters()
    if any(p.device != device for p in params):
        raise AssertionError(f"model parameters not all on {device}")
    opt = tg.optim.Adam(params, lr=LR)
    losses = []
    model.train()
    t0 = time.perf_counter()
    for idx in batch_indices(len(ds.x_train), BATCH, np.random.default_rng(SEED)):
        opt.zero_grad()
        loss = model(ds.x_train[idx], ds.t_train[idx])
        loss.backward()
        tg.optim.clip_grad_norm(params, MAX_GRAD)
        opt.step()
        losses.append(float(loss.item()))
    seconds = time.perf_counter() - t0
    model.eval()
    pred = model.generate(ds.x_test, int(ds.t_test[0, 0]), ds.t_test.shape[1] - 1)
    accuracy = float((np.asarray(pred) == ds.t_test[:, 1:]).all(axis=1).mean())
    return {"losses": losses, "seconds": seconds, "accuracy": accuracy}


def compare_curves(cpu: list[float], dev: list[float]) -> dict:
    """How far the device's loss curve is from the CPU's, and whether that is within the limits."""
    cpu, dev = np.asarray(cpu), np.asarray(dev)
    first = min(FIRST_STEPS, len(cpu))
    first_rel = float(np.max(np.abs(dev[:first] - cpu[:first]) / np.abs(cpu[:first])))
    tail = max(1, len(cpu) // 10)
    cpu_tail, dev_tail = float(cpu[-tail:].mean()), float(dev[-tail:].mean())
    tail_rel = abs(dev_tail - cpu_tail) / abs(cpu_tail)
    return {"steps": len(cpu), "first": first, "first_rel": first_rel, "tail": tail, "cpu_tail": cpu_tail,
            "dev_tail": dev_tail, "tail_rel": tail_rel,
            "ok": len(cpu) == len(dev) and first_rel <= FIRST_STEPS_RTOL and tail_rel <= LAST_TENTH_RTOL}


# ---------------------------------------------------------------- 3. train step vs PyTorch CUDA
def ours_step_seconds(device: str, w, repeats: int, min_sample_s: float) -> float:
    """Median seconds of our train step on `device` (each step ends in .item(): the device is done)."""
    model = build_ours(w)
    if device != "cpu":
        model.to(device)
    xs, ts = make_batch(w)
    step = ours_train_step(model, xs, ts)
    return time_alternating({"ours": lambda: step().item()}, repeats, min_sample_s)["ours"]


def torch_cuda_child(w, repeats: int, min_sample_s: float) -> dict:
    """In its own process: PyTorch's twin on CUDA, or why it cannot run."""
    try:
        import torch
    except ImportError:
        return {"note": "PyTorch not installed (pip install -e '.[bench]' and a CUDA build of torch)"}
    if not torch.cuda.is_available():
        return {"note": f"PyTorch {torch.__version__} has no CUDA device here"}
    model = build_torch(torch, w, build_ours(w)).cuda()
    xs, ts = make_batch(w)
    step = torch_train_step(torch, model, xs, ts, device="cuda")
    seconds = time_alternating({"torch": lambda: step().item()}, repeats, min_sample_s)["torch"]
    return {"seconds": seconds, "device": torch.cuda.get_device_name()}


def torch_cuda_seconds(quick: bool, repeats: int) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.gpu_check", "--torch-child", "--repeats", str(repeats)]
    proc = subprocess.run(cmd + (["--quick"] if quick else []), cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=600)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        return {"note": f"the PyTorch CUDA process failed (exit {proc.returncode}): "
                        f"{(proc.stderr.strip().splitlines() or ['no output'])[-1]}"}
    return json.loads(lines[-1][len(MARK):])


# ---------------------------------------------------------------- the command
# ---------------------------------------------------------------- 4. data-parallel
DATA_PARALLEL_TOL = 1e-10


def data_parallel(device: str) -> dict:
    """Two ranks against one process on `device` (tests/helpers/mpi_train.py): max parameter difference,
    how the ranks reduced, ok; or a note saying why it was skipped."""
    import tempfile

    from tinygrad_s2s.cli.base import UsageError
    from tinygrad_s2s.data import generators
    try:
        import mpi4py  # noqa: F401
        from tinygrad_s2s.cli.ranks import find_mpiexec
        mpiexec = find_mpiexec()
    except (ImportError, UsageError) as exc:
        return {"note": f"skipped: {exc}; pip install -e '.[mpi]'"}
    helper = REPO_ROOT / "tests" / "helpers" / "mpi_train.py"
    dev = "fake" if device != "cuda" else "cuda"
    with tempfile.TemporaryDirectory() as tmp:
        data = generators.write_task("addition", Path(tmp) / "add.txt", n=300, seed=5)
        results = []
        for n, name in ((0, "one"), (2, "two")):
            cmd = ([mpiexec, "-n", str(n)] if n else []) + [sys.executable, str(helper), "--data", str(data),
                                                            "--result", str(Path(tmp) / f"{name}.npz"),
                                                            "--dtype", "float64", "--device", dev]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            if proc.returncode:
                return {"note": f"FAILED: {' '.join(cmd)}: {proc.stderr[-1500:]}", "ok": False}
            with np.load(Path(tmp) / f"{name}.npz") as z:
                results.append({k: z[k] for k in z.files})
    one, two = results
    diff = max(float(np.abs(one[k] - two[k]).max()) for k in one if not k.startswith("__"))
    return {"diff": diff, "path": str(two["__path__"]), "ok": diff <= DATA_PARALLEL_TOL}


def device_name(fake: bool) -> str:
    """'cuda' after checking CuPy sees a GPU (a clear error otherwise), or the fake device's name."""
    if fake:
        return "fakegpu"
    from tinygrad_s2s import backend
    try:
        backend.module_for("cuda")
    except backend.DeviceError as exc:
        raise SystemExit(f"gpu_check: {exc}. On a machine without a GPU, --fake-device checks the script "
                         "on the strict fake device.") from None
    return "cuda"


def describe_device(device: str) -> str:
    if device != "cuda":
        return f"{device} (strict fake GPU on the CPU: timings mean nothing)"
    import cupy
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    return f"cuda: {name}, CuPy {cupy.__version__}, CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}"


def run(args) -> int:
    from tinygrad_s2s.testing.fake_device import fake_device
    w = quick_workload(ATTENTION) if args.quick else ATTENTION
    examples = args.examples or (3 if args.quick else 25)
    repeats = args.repeats or (3 if args.quick else 20)
    min_sample_s = 0.002 if args.quick else 0.05
    with (fake_device() if args.fake_device else contextlib.nullcontext()):
        device = device_name(args.fake_device)
        print(f"device: {describe_device(device)}")
        t0 = time.perf_counter()
        ops = check_ops(device, examples)
        ops_s = time.perf_counter() - t0
        for r in ops:
            if not r["ok"]:
                print(f"op {r['name']}: FAILED: {r['error']}")
        ds = load_date(args.quick)
        ds_w = replace(w, vocab=len(ds.vocab))
        cpu, dev = train_one_epoch("cpu", ds, ds_w), train_one_epoch(device, ds, ds_w)
        curves = compare_curves(cpu["losses"], dev["losses"])
        ours = ours_step_seconds(device, w, repeats, min_sample_s)
        parallel = data_parallel(device)
    theirs = torch_cuda_seconds(args.quick, repeats)
    passed = sum(r["ok"] for r in ops)
    steps = curves["steps"]
    rows = [
        ["op table on the device", f"{len(ops)} ops x {examples} inputs, fwd + every gradient, float64 vs CPU",
         f"{passed}/{len(ops)} ops agree ({ops_s:.0f} s)", "ok" if passed == len(ops) else "FAILED"],
        ["attention on date, 1 epoch: loss curve",
         f"{len(ds.x_train)} examples, {steps} steps, D={w.D} H={w.H}, seed {SEED}",
         f"first {curves['first']} steps max rel diff {curves['first_rel']:.1e}; last {curves['tail']} steps "
         f"mean {curves['dev_tail']:.4f} vs CPU {curves['cpu_tail']:.4f} ({100 * curves['tail_rel']:.2f}%)",
         "ok" if curves["ok"] else "FAILED"],
        ["attention on date, 1 epoch: accuracy", f"exact match, {len(ds.x_test)} test questions",
         f"device {100 * dev['accuracy']:.2f}% vs CPU {100 * cpu['accuracy']:.2f}%; epoch "
         f"{dev['seconds']:.1f} s vs CPU {cpu['seconds']:.1f} s", "reported"],
        ["train step vs PyTorch CUDA", f"attention, {w.label()}",
         f"ours {fmt_time(ours)}" + (f", PyTorch {fmt_time(theirs['seconds'])} ({theirs['device']}): "
                                     f"{ours / theirs['seconds']:.2f}x" if "seconds" in theirs
                                     else f"; {theirs['note']}"), "reported"],
        ["data-parallel: 2 ranks vs 1 process", "tiny model, float64, 20 Adam steps clipped, on the device",
         f"max parameter difference {parallel['diff']:.1e} (tolerance {DATA_PARALLEL_TOL:g}), reduced by "
         f"{parallel['path']}" if "diff" in parallel else parallel["note"],
         ("ok" if parallel["ok"] else "FAILED") if "ok" in parallel else "skipped"],
    ]
    print()
    print_table(["check", "what", "result", "verdict"], rows, title="GPU check summary")
    ok = passed == len(ops) and curves["ok"] and parallel.get("ok", True)
    print("all checks passed" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes (CI and smoke runs)")
    p.add_argument("--fake-device", action="store_true",
                   help="run on the strict fake GPU instead of CUDA (no GPU needed; timings mean nothing)")
    p.add_argument("--examples", type=positive_int, default=None, help="inputs per op (default 25; 3 with --quick)")
    p.add_argument("--repeats", type=positive_int, default=None, help="timed train steps (default 20)")
    p.add_argument("--torch-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.torch_child:
        w = quick_workload(ATTENTION) if args.quick else ATTENTION
        print(MARK + json.dumps(torch_cuda_child(w, args.repeats or 20, 0.002 if args.quick else 0.05)))
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
