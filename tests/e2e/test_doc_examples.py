"""The documentation's code runs as written: every Python block of README.md and docs/ runs as a script,
and the engine guides' examples (gradients of gradients, a user's op under the battery) do what their
pages say."""
import re
import runpy

import numpy as np
import pytest

import tinygrad_s2s as tg
from paths import REPO_ROOT

PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").rglob("*.md"))]
PYTHON_BLOCK = r"```python\n(.*?)```"


def _blocks(title):
    """The Python blocks of the page (README.md or a docs/ page) whose title or section is `title`."""
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        found = re.search(rf"(?m)^(#+) {re.escape(title)}\n", text)
        if found:
            level = len(found.group(1))
            body = re.split(rf"(?m)^#{{1,{level}}} ", text[found.end():], maxsplit=1)[0]
            return re.findall(PYTHON_BLOCK, body, re.S)
    raise AssertionError(f"no page or section titled {title!r} in README.md or docs/")


# A block that is a file of the user's project, run by its own test below, is not a script; a block of
# the export guide needs the export extra and runs in tests/e2e/test_export_onnx.py (marked extras).
NOT_SCRIPTS = {"from my_ops import SPEC", "# needs the export extra"}


def _every_block() -> list:
    return [pytest.param(code, id=f"{page.relative_to(REPO_ROOT)}#{i}") for page in PAGES
            for i, code in enumerate(re.findall(PYTHON_BLOCK, page.read_text(encoding="utf-8"), re.S))
            if not any(marker in code for marker in NOT_SCRIPTS)]


@pytest.mark.parametrize("code", _every_block())
def test_every_python_block_of_the_docs_runs(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                  # a block that writes files writes them here
    _run(code, tmp_path)


def _run(code, tmp_path, main=True):
    """Run a README block as a user would: saved to a file (Hypothesis reads composite sources), as
    a script (`main`) or imported."""
    path = tmp_path / "doc_example.py"
    path.write_text(code)
    return runpy.run_path(str(path), run_name="__main__" if main else "doc_example")


def test_hessian_vector_product_and_gradient_penalty_example(tmp_path):
    scope = _run(_blocks("Gradients of gradients")[0], tmp_path)
    w, v, hvp = scope["w"], scope["v"], scope["hvp"]
    t = np.tanh(w.numpy())
    s2 = 1 - t * t                             # d/dw tanh^3 = 3 t^2 s2; its derivative, times v
    np.testing.assert_allclose(hvp.numpy(), (6 * t * s2 * s2 - 6 * t ** 3 * s2) * v, rtol=1e-5, atol=1e-6)
    critic = scope["critic"]
    assert critic.weight.grad is not None and critic.weight.grad.shape == (4, 1)


def test_the_graph_of_a_gradient_example_draws_tanh_derivatives_and_plots_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                  # the block writes into ./graphviz_out, as a user's would
    scope = _run(_blocks("Gradients of gradients")[1], tmp_path)
    for name in ("tanh-grad1", "tanh-grad2", "tanh-grad3", "tanh-grad3-passes", "tanh-derivatives"):
        assert (tmp_path / "graphviz_out" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    y = np.tanh(scope["xs"].numpy())
    expected = [y, 1 - y ** 2, -2 * y * (1 - y ** 2), -2 * (1 - y ** 2) * (1 - 3 * y ** 2)]
    for got, want in zip(scope["curves"], expected):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-13, atol=1e-14)
    assert sum(n.kind == "op" for n in tg.viz.walk(scope["g"]).nodes.values()) == 20   # as the README says


def test_the_users_fused_layer_norm_passes_the_battery_and_a_broken_one_is_named(tmp_path):
    scope = _run(_blocks("Test your own ops with the library's battery")[0], tmp_path)   # runs check_op(SPEC)
    LayerNorm, SPEC = scope["LayerNorm"], scope["SPEC"]

    class Broken(LayerNorm):
        def backward(self, gy):
            gx, gg, gb = super().backward(gy)
            return gx + 0.1 * (gy * self.g).sum(axis=-1, keepdims=True), gg, gb   # a wrong mean term
    broken = tg.testing.OpSpec("layer_norm", lambda x, g, b: Broken.apply(x, g, b, eps=1e-5),
                               SPEC.ref, SPEC.inputs)
    with pytest.raises(AssertionError) as info:
        tg.testing.check_op(broken, checks=["gradient"])
    msg = str(info.value)
    assert re.match(r"layer_norm: gradient: gradcheck: input 0 at index \([\d, ]+\): analytic "
                    r"\S+ vs numerical \S+", msg), msg
    assert "input shapes" in msg


def test_a_reference_that_computes_something_else_fails_the_battery_and_create_graph(tmp_path):
    """create_graph=True differentiates an op's reference: one that drops a term (here the guide's
    layer norm without `+ b`) would give wrong second-order results silently. The recorded backward
    refuses it, and the battery's second-order check names it."""
    scope = _run(_blocks("Test your own ops with the library's battery")[0], tmp_path, main=False)
    LayerNorm, SPEC = scope["LayerNorm"], scope["SPEC"]

    class NoBias(LayerNorm):
        def reference(self, x, g, b):
            d = x - tg.mean(x, axis=-1, keepdims=True)
            return d / tg.sqrt(tg.mean(d * d, axis=-1, keepdims=True) + self.eps) * g
    rng = np.random.default_rng(0)
    x, g, b = (tg.Tensor(rng.standard_normal(s), requires_grad=True) for s in ((3, 4), (4,), (4,)))
    y = NoBias.apply(x, g, b, eps=1e-5)
    tg.grad(tg.sum(y * y), [x, g, b])                     # first order: the fused backward, right
    with pytest.raises(RuntimeError, match=r"layer_norm: NoBias.reference does not compute what its forward "
                                           r"computed: output 0 at element \(\d, \d\) is .*create_graph=True "
                                           r"differentiates reference.*forward at .*test_doc_examples.py:\d+"):
        tg.grad(tg.sum(NoBias.apply(x, g, b, eps=1e-5) ** 2), [x, g, b], create_graph=True)
    broken = tg.testing.OpSpec("layer_norm", lambda x, g, b: NoBias.apply(x, g, b, eps=1e-5), SPEC.ref, SPEC.inputs)
    with pytest.raises(AssertionError, match="layer_norm: second_order: (raised RuntimeError: layer_norm: NoBias"
                                             ".reference does not compute|gradgradcheck: input 2 at index .*: the "
                                             "gradient made with create_graph=True is)"):   # at b = 0 only the gradient differs
        tg.testing.check_op(broken, checks=["second_order"])


def test_the_battery_names_the_check_when_the_op_itself_raises(tmp_path):
    scope = _run(_blocks("Test your own ops with the library's battery")[0], tmp_path, main=False)

    class Crashes(scope["LayerNorm"]):
        def backward(self, gy):
            return gy[0, 0, 0]                            # an IndexError on the battery's 1-D and 2-D inputs
    spec = tg.testing.OpSpec("layer_norm", lambda x, g, b: Crashes.apply(x, g, b, eps=1e-5),
                             scope["SPEC"].ref, scope["SPEC"].inputs)
    with pytest.raises(AssertionError, match=r"layer_norm: gradient: raised IndexError: layer_norm: "
                                             r"Crashes.backward failed: .*\(input shapes") as info:
        tg.testing.check_op(spec, checks=["gradient"])
    assert isinstance(info.value.__cause__, IndexError)


def test_op_test_cases_generates_one_case_per_op_and_check(tmp_path):
    scope = _run(_blocks("Test your own ops with the library's battery")[0], tmp_path, main=False)
    cases = tg.testing.op_test_cases([scope["SPEC"]])
    ids = [c.id for c in cases]
    from tinygrad_s2s.testing.battery import onnx_available
    assert ids == [f"layer_norm-{c}" for c in tg.testing.CHECKS if c != "kinks" and (c != "onnx" or onnx_available())]
    with pytest.raises(ValueError, match="unknown check 'speed'"):
        tg.testing.check_op(scope["SPEC"], checks=["speed"])


def test_the_pytest_snippet_generates_tests_in_a_users_project(tmp_path):
    import subprocess
    import sys
    ops_code, test_code = _blocks("Test your own ops with the library's battery")
    (tmp_path / "my_ops.py").write_text(ops_code)
    (tmp_path / "test_mine.py").write_text(test_code)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_mine.py",
                          "-k", "forward_float64 or invariants", "-rA"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "test_my_ops[layer_norm-forward_float64]" in run.stdout
    assert "test_my_ops[layer_norm-invariants]" in run.stdout and "2 passed" in run.stdout


def test_the_from_pytorch_guide_is_linked_and_has_a_row_for_each_habit():
    page = (REPO_ROOT / "docs" / "guide" / "from-pytorch.md").read_text(encoding="utf-8")
    assert "(docs/guide/from-pytorch.md)" in (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    rows = [line for line in page.splitlines() if line.startswith("| ")]
    for habit in ("dim=", "keepdim=", "x.size()", "nn.Linear(3, 2).weight", "F.softmax", "torch.tensor([1.5])",
                  "torch.from_numpy", "x.data", "x.grad", "w += 1", "torch.no_grad()", "torch.zeros", "randn",
                  "nn.Sequential", "loss.item()", "retain_grad"):
        assert any(habit in row.split(" | ")[0] for row in rows), f"no row for {habit!r}"
