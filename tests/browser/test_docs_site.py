"""The documentation site as a reader sees it: built with `mkdocs build --strict` (the docs extra), opened
from disk in headless Chromium (the site reads offline), with no console errors, its reference pages
showing the library's own docstrings, and a screenshot that is not blank."""
import base64
import importlib.util
import io
import subprocess
import sys

import pytest

from browser import Browser, find_chromium
from paths import REPO_ROOT

pytestmark = [pytest.mark.skipif(find_chromium() is None, reason="no chromium on PATH (CI installs it in .ci/run)"),
              pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None,
                                 reason="mkdocs not installed here (pip install -e '.[docs]'; CI installs it)")]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)], cwd=REPO_ROOT,
                       capture_output=True, text=True, timeout=300, env={"NO_MKDOCS_2_WARNING": "1",
                                                                          **__import__("os").environ})
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def _pixels(b):
    from PIL import Image
    data = b.call("Page.captureScreenshot", session=True, format="png")["data"]
    return Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")


@pytest.mark.parametrize("page, expect", [("index.html", "Test gradients with Hypothesis"),
                                          ("reference/ops.html", "softmax_cross_entropy"),
                                          ("reference/tensor.html", "backward"),
                                          ("reference/command-line.html", "--save-every")])
def test_a_page_of_the_site_opens_offline_and_shows_its_text(site, page, expect):
    with Browser() as b:
        b.load((site / page).as_uri())
        text = b.eval("document.body.innerText")
        assert expect in text, text[:500]
        assert b.console == [], b.console
        image = _pixels(b)
        colours = image.resize((64, 64)).getcolors(64 * 64)
        assert len(colours) > 8, "the screenshot is (nearly) one colour: nothing is drawn"
