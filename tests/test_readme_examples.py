"""The README's engine examples run as written."""
import re
import runpy
from pathlib import Path

import numpy as np


README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _blocks(section):
    body = README.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", body, re.S)


def _run(code, tmp_path):
    """Run a README block as a user would: saved to a file (Hypothesis reads composite sources)."""
    path = tmp_path / "readme_example.py"
    path.write_text(code)
    return runpy.run_path(str(path))


def test_hessian_vector_product_and_gradient_penalty_example(tmp_path):
    scope = _run(_blocks("Gradients of gradients")[0], tmp_path)
    w, v, hvp = scope["w"], scope["v"], scope["hvp"]
    t = np.tanh(w.numpy())
    s2 = 1 - t * t                             # d/dw tanh^3 = 3 t^2 s2; its derivative, times v
    np.testing.assert_allclose(hvp.numpy(), (6 * t * s2 * s2 - 6 * t ** 3 * s2) * v, rtol=1e-5, atol=1e-6)
    critic = scope["critic"]
    assert critic.weight.grad is not None and critic.weight.grad.shape == (4, 1)
