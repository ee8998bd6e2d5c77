"""An exported PyTorch model runs in a fresh Python with torch and safetensors alone: the exported
directory's model.py never imports tinygrad_s2s, and answers as the run does."""
import json
import subprocess
import sys

import pytest
import tiny_model
from extras import need

from tinygrad_s2s.torch_export import export_run
from tinygrad_s2s.training.runfiles import load_run

pytestmark = pytest.mark.extras

PROGRAM = """
import json, sys
sys.path.insert(0, sys.argv[1])
import model
m = model.load(sys.argv[1])
print(json.dumps({"answers": m.answer(json.loads(sys.argv[2])),
                  "ours_imported": sorted(n for n in sys.modules if n.split(".")[0] in ("tinygrad_s2s", "zoo"))}))
"""


def test_exported_directory_loads_with_torch_alone(tmp_path):
    need("torch", "bench")
    need("safetensors", "export")
    run_dir = tiny_model.finished_run(tmp_path, "attention")
    out = tmp_path / "exported"
    export_run(run_dir, out)
    questions = ["16+75", "2+2", "500+500"]
    done = subprocess.run([sys.executable, "-c", PROGRAM, str(out), json.dumps(questions)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["ours_imported"] == []
    assert result["answers"] == load_run(run_dir).predict(questions)
