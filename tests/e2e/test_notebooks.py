"""The tutorial notebooks under docs/notebooks/ run top to bottom in a real Jupyter kernel (nbclient,
ipykernel) on a machine without system Graphviz, and show what they promise: the graph as SVG, the
interactive view as HTML, the heatmap as PNG, and no error anywhere."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the notebook tests need nbformat (pip install -e '.[dev]')")
nbclient = pytest.importorskip("nbclient", reason="the notebook tests need nbclient (pip install -e '.[dev]')")
pytest.importorskip("ipykernel", reason="the notebook tests need ipykernel (pip install -e '.[dev]')")
pytest.importorskip("ipywidgets", reason="the notebook tests need ipywidgets (pip install -e '.[dev]')")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "docs" / "notebooks"
KERNEL = "tinygrad-s2s-test"


@pytest.fixture
def kernel(tmp_path, monkeypatch):
    """A kernel spec for this Python, found first on JUPYTER_PATH (a user's own `python3` kernel may
    be another Python), whose PATH holds nothing: no system `dot`, as on most users' machines."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": KERNEL, "language": "python",
        "env": {"PATH": str(empty), "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
                "TINYGRAD_S2S_DATA": str(tmp_path / "data"), "MPLBACKEND": "agg"}}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return KERNEL


def run_notebook(name: str, kernel: str, cwd: Path):
    cwd.mkdir()
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbclient.NotebookClient(nb, kernel_name=kernel, timeout=120, resources={"metadata": {"path": str(cwd)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, [f"{e.ename}: {e.evalue}" for e in errors]
    return nb


def shown(nb, cell_source: str) -> dict:
    """The mime data a cell (found by the start of its last line) displays, all outputs merged."""
    cells = [c for c in nb.cells if c.cell_type == "code" and c.source.splitlines()[-1].startswith(cell_source)]
    assert len(cells) == 1, cell_source
    data = {}
    for o in cells[0].outputs:
        data.update(o.get("data", {}))
    return data


def test_define_a_model_notebook(kernel, tmp_path):
    nb = run_notebook("define-a-model.ipynb", kernel, tmp_path / "cwd")
    svg = shown(nb, "tg.viz.to_dot(")["image/svg+xml"]
    assert svg.lstrip().startswith(("<?xml", "<svg")) and "cluster_proj" in svg      # the module's box
    page = shown(nb, "tg.viz.show_html(")["text/html"]
    assert page.startswith("<iframe srcdoc=") and 'sandbox="allow-scripts"' in page and "TgGraphviz" in page
    assert "gradcheck passed" in "".join(o.get("text", "") for o in nb.cells[-1].outputs)


def test_attention_notebook(kernel, tmp_path):
    nb = run_notebook("attention.ipynb", kernel, tmp_path / "cwd")
    assert shown(nb, "attention_map_for_run(")["image/png"]       # base64 PNG text in the notebook
    training = nb.cells[2].outputs
    logged = "".join(o.get("text", "") for o in training if o.output_type == "stream")
    assert "epoch 1/1: loss" in logged
    # the progress bar is one widget (tqdm.auto with ipywidgets), not a stream of \r-redrawn text lines
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in training)
    assert "\r" not in logged and "it/s" not in logged and "ex/s" not in logged
    # nothing lands beside the notebook: the data goes to TINYGRAD_S2S_DATA, the run to a temp folder
    assert not list((tmp_path / "cwd").iterdir()) and (tmp_path / "data" / "date.txt").exists()
