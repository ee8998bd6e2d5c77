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


def test_the_guides_examples_run_in_order(tmp_path):
    """docs/guide/export-pytorch.md's ```py blocks (fenced apart from the ```python blocks every test
    environment runs, since these need torch and safetensors), run as one script beside a trained peeky
    run named as the page names it."""
    import re
    import shutil

    from paths import REPO_ROOT
    need("torch", "bench")
    need("safetensors", "export")
    page = (REPO_ROOT / "docs" / "guide" / "export-pytorch.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```py\n(.*?)```", page, re.S)
    assert len(blocks) == 3
    shutil.copytree(tiny_model.finished_run(tmp_path / "train", "peeky"), tmp_path / "runs" / "peeky-addition")
    (tmp_path / "guide.py").write_text("\n".join(blocks))
    done = subprocess.run([sys.executable, "guide.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "['model.safetensors', 'config.json', 'model.py']" in done.stdout
    assert re.search(r"loss after 20 steps: \d+\.\d{4}", done.stdout), done.stdout
    assert sorted(p.name for p in (tmp_path / "peeky-torch-continued").iterdir()) == [
        "config.json", "model.py", "model.safetensors"]
