"""The worked plugin under examples/gru_attention: installed the way a user installs it (pip, from
its own pyproject.toml, offline), found through its entry point by a fresh interpreter, and passing
the conformance battery there. The decoding properties run on it in test_decoding.py."""
import os
import shutil
import subprocess
import sys
from paths import REPO_ROOT

EXAMPLE = REPO_ROOT / "examples" / "gru_attention"


def test_the_example_plugin_installs_and_passes_the_battery(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(EXAMPLE, src)          # the build leaves build/ and *.egg-info beside the sources
    site = tmp_path / "site"
    # --no-index and --no-build-isolation: nothing is downloaded (setuptools and wheel come with [dev])
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(site), str(src)], check=True, capture_output=True, text=True)
    assert (site / "gru_attention_plugin" / "model.py").is_file()
    code = ("import tinygrad_s2s as tg\n"
            "print(tg.available_models()['gru_attention'])\n"
            "print(tg.testing.check_model('gru_attention'))\n")
    env = dict(os.environ, PYTHONPATH=str(site))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "package tinygrad-s2s-gru-attention" in out.stdout
    assert "'round trip', 'device', 'draws'" in out.stdout
