"""The core install stays NumPy only: nothing imports onnx at import time, and without the export extra
tg.onnx says which extra to install, the op battery leaves its onnx check out, and `check` reports the
contract's exportable item as not checked."""
import json
import subprocess
import sys


def _python(code: str) -> subprocess.CompletedProcess:
    """Run code where onnx and onnxruntime cannot be imported (as in a core install)."""
    hide = "import sys; sys.modules['onnx'] = None; sys.modules['onnxruntime'] = None\n"
    return subprocess.run([sys.executable, "-c", hide + code], capture_output=True, text=True, timeout=300)


def test_importing_the_library_imports_no_onnx():
    out = subprocess.run([sys.executable, "-c", "import sys, tinygrad_s2s as tg; tg.onnx; import tinygrad_s2s.cli; "
                          "print(sorted(m for m in sys.modules if m.split('.')[0] in ('onnx', 'onnxruntime')))"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_without_the_extra_export_names_it_and_the_battery_leaves_onnx_out():
    out = _python("""
import numpy as np, tinygrad_s2s as tg
from tinygrad_s2s.testing import check_op, op_test_cases
from tinygrad_s2s.testing.op_table import BY_NAME
try:
    tg.onnx.export(lambda x: tg.exp(x), [np.ones(2)], "x.onnx")
except ModuleNotFoundError as e:
    print("export:", e)
print("cases:", any(c.id.endswith("-onnx") for c in op_test_cases([BY_NAME["exp"]])))
check_op(BY_NAME["exp"], checks=None, max_examples=2)
try:
    check_op(BY_NAME["exp"], checks=["onnx"], max_examples=2)
except ModuleNotFoundError as e:
    print("asked:", e)
""")
    assert out.returncode == 0, out.stderr
    assert "export: tinygrad_s2s.onnx needs the 'onnx' package, which the 'export' extra installs: pip install " \
           "'tinygrad-s2s[export]'" in out.stdout
    assert "cases: False" in out.stdout
    assert "asked: tinygrad_s2s.onnx needs the 'onnx' package" in out.stdout


def test_check_reports_exportable_as_not_checked_without_the_extra():
    out = _python("from tinygrad_s2s.cli import main; raise SystemExit(main(['check', 'seq2seq', '--no-device', "
                  "'--json']))")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)["optional"]["exportable"]
    assert report["passed"] is None and "not checked" in report["detail"] and "[export]" in report["detail"]
