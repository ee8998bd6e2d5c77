"""SIGTERM (docker stop, Slurm, timeout) and SIGHUP (a closed terminal) stop training as Ctrl-C does:
the position reached is saved, the message says how to continue, and the exit code is 128 + the
signal, as a shell reports it; the run then resumes."""
import os
import signal
import subprocess
import sys
import time

import pytest

import tinygrad_s2s as tg
from tinygrad_s2s.data import generators as datagen

from paths import HELPERS

PRELUDE = (f"import sys; sys.path.insert(0, {str(HELPERS)!r}); import tiny_model; "
           "from tinygrad_s2s.cli import main; sys.exit(main())")


def popen(work, *args):
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               TINYGRAD_S2S_DEBUG="")
    return subprocess.Popen([sys.executable, "-c", PRELUDE, *args], cwd=work, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_a_stop_signal_saves_the_position_and_exits_128_plus_it(tmp_path, sig):
    datagen.write_task("addition", tmp_path / "add.txt", n=400, seed=5)
    run = tmp_path / "run"
    proc = popen(tmp_path, "train", "tiny-s2s", "--dataset", "add.txt", "--hidden", "8", "--wordvec", "4",
                 "--batch-size", "8", "--epochs", "1000", "--test-limit", "20", "--no-progress",
                 "--save-every", "1000", "--out", str(run))
    try:
        deadline = time.time() + 120
        while not (run / "last.npz").exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)                  # some steps past checkpoint 0, none saved since (--save-every 1000)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + sig, (proc.returncode, err)
    assert "interrupted at epoch" in err and "continue with: tinygrad-s2s train --resume" in err, err
    meta = tg.load(run / "last.npz", return_meta=True)[1]
    assert meta.get("interrupted") is True and meta["step"] > 0, meta
