"""The interactive HTML view in a real headless Chromium (Debian's package; CI installs it in .ci/run):
what a person sees on screen, read back from the page."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

import tinygrad_s2s as tg
from tinygrad_s2s import nn
from tinygrad_s2s.viz import show_html, to_html
from tinygrad_s2s.viz.html import MAX_OPS_AT_LOAD

from browser import Browser, find_chromium
from small_models import NAMES, crafted, mlp_loss, registered, tanh_derivatives


pytestmark = pytest.mark.skipif(find_chromium() is None,
                                reason="no chromium on PATH (CI installs Debian's `chromium` in .ci/run)")


def _count(b, selector):
    return b.eval(f"document.querySelectorAll('#graph {selector}').length")



@pytest.fixture(scope="module")
def transformer_page():
    if not registered("transformer"):
        pytest.skip("the zoo's 'transformer' model is not registered")
    folder = tempfile.mkdtemp(prefix="tg-html-")
    out = os.path.join(folder, "transformer.html")
    proc = subprocess.run([sys.executable, "-m", "tinygrad_s2s", "graph", "transformer", "--whole", "--format",
                           "html", "--out", out], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == out
    return "file://" + out



def test_transformer_page_in_chromium(transformer_page):
    with Browser() as b:
        b.open(transformer_page)
        assert b.eval("document.body.dataset.state") == "ready", b.eval("document.getElementById('status').textContent")
        assert b.console == []
        ready_ms = int(b.eval("document.body.dataset.readyMs"))
        assert ready_ms < 2000, f"the whole-transformer page took {ready_ms} ms to become interactive"
        at_load = _count(b, "g.node")
        assert 0 < at_load <= MAX_OPS_AT_LOAD
        assert _count(b, "g.cluster") > 0 and _count(b, "g.tensor") > 0
        assert b.eval("document.querySelector('#graph g.edge text').textContent").startswith("(")   # shapes
        # a real click on a closed module box opens it, and the box stays where it was on screen
        closed = _count(b, "g.cluster.closed")
        ref = b.eval("document.querySelector('#graph g.cluster.closed').dataset.ref")
        where = ("(() => { const el = [...document.querySelectorAll('#graph g[data-ref]')].find(e => e.dataset.ref === "
                 + json.dumps(ref) + "); const r = el.getBoundingClientRect(); return [r.left, r.top, el.getAttribute('class')]; })()")
        b.eval("document.querySelector('#graph g.cluster.closed').scrollIntoView({block: 'center', inline: 'center'})")
        x0, y0, cls0 = b.eval(where)
        b.click("#graph g.cluster.closed")
        assert b.eval("document.body.dataset.renders") == "2"
        assert _count(b, "g.node") > at_load and _count(b, "g.cluster.closed") != closed
        x1, y1, cls1 = b.eval(where)
        assert (cls0, cls1) == ("cluster closed", "cluster open")
        assert abs(x1 - x0) < 2 and abs(y1 - y0) < 2, ((x0, y0), (x1, y1))
        # hovering an op shows its op, shapes, dtype, module and the line of zoo code that called it
        b.eval("document.querySelector('#graph g.node').dispatchEvent(new MouseEvent('mouseover', {bubbles: true}))")
        info = b.eval("document.getElementById('info').textContent")
        assert info.startswith("op ") and "module" in info and "float32" in info
        assert re.search(r"called at.*(zoo/\w+|tinygrad_s2s/models/base)\.py:\d+", info), info
        # the search box finds module paths
        b.eval("const s = document.getElementById('search'); s.value = 'cross_attn'; "
               "s.dispatchEvent(new Event('input'))")
        assert "cross_attn" in b.eval("document.getElementById('results').textContent")
        assert b.console == []
        b.open(transformer_page + "#expand=encoder")
        assert _count(b, "g.node") > at_load
        assert b.console == []



def test_dump_dom_shows_what_is_on_screen(transformer_page, tmp_path):
    # the scripted check the page is built for: no DevTools, just chromium's own --dump-dom
    def dump(url, profile):
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 f"--user-data-dir={tmp_path / profile}", "--virtual-time-budget=10000", "--dump-dom", url]
        dom = subprocess.run([find_chromium(), *flags], capture_output=True, text=True, timeout=120).stdout
        assert 'data-state="ready"' in dom
        return len(re.findall(r'<g [^>]*class="node"', dom)), len(re.findall(r'<g [^>]*class="cluster', dom))

    nodes, boxes = dump(transformer_page, "a")
    assert 0 < nodes <= MAX_OPS_AT_LOAD and boxes > 0
    assert dump(transformer_page + "#expand=encoder", "b")[0] > nodes



def test_gradient_overlay_and_unknown_expand_paths(tmp_path):
    loss, model = mlp_loss(input_grad=True)
    loss.backward(retain_graph=True)
    page = "file://" + to_html(loss, tmp_path / "g.html", module=model)
    with Browser() as b:
        b.open(page + "#expand=nosuchmodule")
        assert b.eval("document.body.dataset.state") == "ready"
        assert "#expand: no module nosuchmodule" in b.eval("document.getElementById('status').textContent")
        assert b.eval("document.getElementById('grads').disabled") is False
        b.click("#grads")
        labels = b.eval("[...document.querySelectorAll('#graph g.tensor text')].map(t => t.textContent).join(' ')")
        assert "‖g‖" in labels
        edges = b.eval("[...document.querySelectorAll('#graph g.edge text')].map(t => t.textContent).join(' ')")
        assert "‖g‖" in edges                   # intermediate tensors (edge labels) have their norms too
        # the folded stack of identical blocks (the page opens with folds closed) unrolls on click
        assert "×3" in b.eval("document.getElementById('graph').textContent")
        before = _count(b, "g.node")
        b.click("#graph g.cluster.closed")
        assert _count(b, "g.node") == before + 3 * 3          # 3 blocks: matmul, add and tanh each
        assert "unrolled" in b.eval("document.getElementById('graph').textContent")
        assert b.console == []



def test_time_steps_fold_and_unroll_in_the_page(tmp_path):
    class Unrolled(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(3, 4, fused=False)

        def forward(self, xs):
            hs = self.lstm(xs)
            return tg.sum(hs[0] if isinstance(hs, tuple) else hs)

    model = Unrolled()
    loss = model(tg.Tensor(np.ones((2, 4, 3), np.float32)))
    page = "file://" + to_html(loss, tmp_path / "lstm.html", module=model)
    with Browser() as b:
        b.open(page)
        text = b.eval("document.getElementById('graph').textContent")
        assert "lstm steps" in text and "×4" in text and "next step" in text
        before = _count(b, "g.node")
        b.click("#graph g.cluster.closed")                  # unroll: four step boxes, each open
        assert _count(b, "g.node") == before + 4 * 12
        assert "lstm step 4" in b.eval("document.getElementById('graph').textContent")
        assert b.console == []


def test_the_html_view_of_a_third_derivative_in_chromium(tmp_path):
    x = tg.Tensor(np.array(0.5), requires_grad=True, name="x")
    d3 = tanh_derivatives(x, 3)[-1]
    with Browser() as b:
        b.open("file://" + to_html(d3, tmp_path / "d3.html") + "#expand=backward3")
        assert b.eval("document.body.dataset.state") == "ready"
        text = b.eval("document.getElementById('graph').textContent")
        assert "grad(tanh)" in text and "backward3" in text
        assert b.eval("document.querySelectorAll('#graph g.node').length") == 20
        assert b.console == []


def _screenshot(b):
    """The page as a person sees it: an RGB image of the viewport (CSS pixels, device scale 1)."""
    import base64
    import io

    from PIL import Image

    data = b.call("Page.captureScreenshot", session=True, format="png")["data"]
    return Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")


def _hex(rgb):
    return "#" + bytes(rgb).hex()


def test_gradient_overlay_colours_tensors_and_edges_by_norm(tmp_path):
    loss, model = mlp_loss(input_grad=True)
    loss.backward(retain_graph=True)
    page = "file://" + to_html(loss, tmp_path / "g.html", module=model)
    with Browser() as b:
        b.open(page)
        b.click("#grads")
        b.eval("document.getElementById('view').scrollTo(0, 0)")
        # what Graphviz drew: every tensor with a norm is filled in a colour, never black
        tensors = b.eval("""[...document.querySelectorAll('#graph g.tensor')].map(g => {
            const e = g.querySelector('ellipse'), r = e.getBoundingClientRect();
            return {text: g.textContent, fill: e.getAttribute('fill'), box: [r.left, r.top, r.right, r.bottom]}; })""")
        normed = [t for t in tensors if "‖g‖" in t["text"]]
        assert len(normed) >= 3, tensors
        fills = [t["fill"].lower() for t in normed]
        assert all(re.fullmatch(r"#[0-9a-f]{6}", f) and f != "#000000" for f in fills), fills
        assert len(set(fills)) >= 3, fills              # the colour follows the norm
        strokes = b.eval("""[...document.querySelectorAll('#graph g.edge')].filter(g => g.textContent.includes('‖g‖'))
            .map(g => g.querySelector('path').getAttribute('stroke'))""")
        assert strokes and all(s.lower() not in ("#000000", "black") for s in strokes), strokes
        assert len({s.lower() for s in strokes}) >= 2, strokes
        # what reaches the screen: each tensor's most common pixel is its fill (not black, not covered)
        shot = _screenshot(b)
        seen = []
        for t in normed:
            left, top, right, bottom = (round(v) for v in t["box"])
            if left < 0 or top < 0 or right > shot.width or bottom > shot.height:
                continue                                  # scrolled out of the window
            inner = shot.crop((left + (right - left) // 4, top + (bottom - top) // 4,
                               right - (right - left) // 4, bottom - (bottom - top) // 4))
            count, colour = max(inner.getcolors(inner.width * inner.height))
            assert count > inner.width * inner.height / 3, (t["text"], count)
            assert max(colour) > 150, f"{t['text']!r} is drawn {_hex(colour)} on screen"
            assert all(abs(a - b_) <= 8 for a, b_ in zip(colour, bytes.fromhex(t["fill"][1:]))), \
                (t["text"], _hex(colour), t["fill"])
            seen.append(colour)
        assert len(seen) >= 3 and len(set(seen)) >= 3, seen
        assert b.console == []


def test_crafted_names_show_as_text_in_the_page(tmp_path):
    with Browser() as b:
        for i, name in enumerate(NAMES):
            loss, model = crafted(name)
            b.open("file://" + to_html(loss, tmp_path / f"n{i}.html", module=model, title=name) + "#expand=fc")
            assert b.eval("document.body.dataset.state") == "ready", (name, b.eval("document.body.outerHTML")[:300])
            texts = b.eval("[...document.querySelectorAll('#graph svg text')].map(t => t.textContent)")
            assert f"▾ {name} ({name})" in texts and f"▾ Linear ({name}.fc)" in texts, (name, texts)
            assert name in texts, (name, texts)                   # the input tensor's name
            assert b.eval("document.querySelector('h1').textContent") == name
            assert b.console == [], name


def _eval_in_frame(b, expression):
    """The value of `expression` in the page's first <iframe> (in the page's process or in one of its
    own, as Chromium's site isolation decides); None while that frame has no document yet, or while it
    moves: a sandboxed srcdoc frame can leave the page's process between two DevTools calls, so the frame
    or target just listed may be gone by the next call, and the next poll finds it where it went."""
    gone = ("Cannot find context", "No frame for given id", "No target with given id", "No session with given id")
    try:
        frames = [t for t in b.call("Target.getTargets")["targetInfos"] if t["type"] == "iframe"]
        if frames:
            session = b.call("Target.attachToTarget", targetId=frames[0]["targetId"], flatten=True)["sessionId"]
            r = b.call("Runtime.evaluate", session=session, expression=expression, returnByValue=True)
        else:
            tree = b.call("Page.getFrameTree", session=True)["frameTree"]
            if "childFrames" not in tree:
                return None
            ctx = b.call("Page.createIsolatedWorld", session=True, frameId=tree["childFrames"][0]["frame"]["id"],
                         worldName="check")["executionContextId"]
            r = b.call("Runtime.evaluate", session=True, contextId=ctx, expression=expression, returnByValue=True)
    except RuntimeError as exc:
        if any(reason in str(exc) for reason in gone):
            return None
        raise
    return r["result"].get("value")


def test_the_inline_view_draws_inside_its_sandboxed_frame(tmp_path):
    # what a notebook does with show_html(...)'s _repr_html_: put it in the page, as is
    loss, model = mlp_loss()
    host = tmp_path / "notebook.html"
    host.write_text('<!doctype html><html><body data-state="ready">' + show_html(loss, module=model)._repr_html_()
                    + "</body></html>", encoding="utf-8")
    with Browser() as b:
        b.open(host.as_uri())
        deadline = time.monotonic() + 60
        seen = None
        while time.monotonic() < deadline:
            seen = _eval_in_frame(b, "document.body ? [window.origin, document.body.dataset.state, "
                                     "document.querySelectorAll('#graph .node').length, "
                                     "document.querySelectorAll('#graph .cluster').length] : null")
            if seen and seen[1] in ("ready", "error"):
                break
            time.sleep(0.1)
        assert seen, f"the inline view's frame had no document after 60 s: {b.console}"
        # drawn offline in an origin of its own (opaque: 'null'), away from the notebook's
        origin, state, ops, boxes = seen
        assert (origin, state) == ("null", "ready") and ops > 0 and boxes > 0, (seen, b.console)
        assert not b.console
