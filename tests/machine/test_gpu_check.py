"""benchmarks/gpu_check.py on the strict fake GPU (CI has no GPU): the whole command, and that each of
its checks fails loudly when the device path is wrong."""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

import pytest

import tinygrad_s2s as tg
from tinygrad_s2s.testing import op_table

from paths import REPO_ROOT

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import gpu_check  # noqa: E402


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    """The date task is generated into a temporary folder, not the repository's datasets/."""
    monkeypatch.setenv("TINYGRAD_S2S_DATA", str(tmp_path))


def cuda_available() -> bool:
    try:
        tg.backend.module_for("cuda")
        return True
    except tg.backend.DeviceError:
        return False


def test_whole_check_passes_on_the_fake_device(capsys):
    assert gpu_check.main(["--fake-device", "--quick"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("device: fakegpu (strict fake GPU")
    n = len(op_table.OPS)
    assert f"{n}/{n} ops agree" in out
    summary = out[out.index("GPU check summary"):]
    verdicts = re.findall(r"\s(ok|FAILED|reported|skipped)$", summary, flags=re.M)
    parallel = "ok" if importlib.util.find_spec("mpi4py") else "skipped"     # the data-parallel row: mpi extra
    assert verdicts == ["ok", "ok", "reported", "reported", parallel], summary
    # on the fake device, NumPy underneath: the two loss curves are the same numbers
    assert "max rel diff 0.0e+00" in summary and "(0.00%)" in summary
    # no CUDA build of torch here: the table says why there is no PyTorch figure
    assert re.search(r"ours [\d.]+ (us|ms|s); PyTorch (not installed|.* has no CUDA device here)", summary), summary
    assert out.rstrip().endswith("all checks passed")


def test_ops_that_go_wrong_on_the_device_are_reported_by_name(monkeypatch, capsys):
    """An op that computes another number on the device, and one that cuts its inputs off the graph,
    fail the op-table check by name (the others still pass), and the command exits 1."""
    spec = op_table.BY_NAME["exp"]
    drifting = op_table.OpSpec("drifting_exp", lambda x: tg.exp(x) * (1.0 if x.device == "cpu" else 1.001),
                               spec.ref, spec.inputs)
    cut = op_table.OpSpec("cut_exp", lambda x: tg.exp(x.detach()) + 0.0 * x.sum().detach(), spec.ref, spec.inputs)
    monkeypatch.setattr(op_table, "OPS", [*op_table.OPS[:2], drifting, cut])
    from tinygrad_s2s.testing.fake_device import fake_device
    with fake_device() as dev:
        rows = gpu_check.check_ops(dev, 2)
        assert [r["ok"] for r in rows] == [True, True, False, False]
        assert "drifting_exp: forward differs from the CPU's" in rows[2]["error"]
        assert rows[3]["name"] == "cut_exp" and "does not require grad" in rows[3]["error"]
        monkeypatch.setattr(op_table, "OPS", [drifting])
        assert gpu_check.main(["--fake-device", "--quick", "--examples", "2"]) == 1
    out = capsys.readouterr().out
    assert "op drifting_exp: FAILED" in out and "0/1 ops agree" in out and "SOME CHECKS FAILED" in out


def test_loss_curves_that_part_are_flagged():
    same = gpu_check.compare_curves([4.0, 3.0, 2.0, 1.0] * 10, [4.0, 3.0, 2.0, 1.0] * 10)
    assert same["ok"] and same["first_rel"] == 0.0 and same["tail_rel"] == 0.0
    early = gpu_check.compare_curves([4.0] * 40, [4.01] + [4.0] * 39)        # 0.25% off at step 1
    assert not early["ok"] and early["first_rel"] == pytest.approx(0.0025)
    late = gpu_check.compare_curves([4.0] * 40, [4.0] * 36 + [4.5] * 4)       # last tenth 12% off
    assert not late["ok"] and late["tail_rel"] == pytest.approx(0.125)
    assert not gpu_check.compare_curves([4.0] * 40, [4.0] * 39)["ok"]         # a step missing


@pytest.mark.skipif(cuda_available(), reason="this machine has a CUDA device")
def test_without_a_gpu_it_says_so_and_names_the_fake_device_flag():
    proc = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--quick"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "no CUDA device was found" in proc.stderr and "--fake-device" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_runs_as_a_script_path_too(tmp_path):
    """`python benchmarks/gpu_check.py --help` works from the repository root (no -m needed)."""
    proc = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--help"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "--fake-device" in proc.stdout
