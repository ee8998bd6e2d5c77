"""The documentation site as a reader sees it: built with `mkdocs build --strict` (the docs extra), opened
from disk in headless Chromium (the site reads offline), with no console errors, its reference pages
showing the library's own docstrings, and a screenshot that is not blank."""
import base64
import html
import importlib.util
import inspect
import io
import re
import subprocess
import sys
import time

import pytest

import tinygrad_s2s as tg
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


def html_text(html: str) -> str:
    return re.sub(r"\s*<[^>]+>\s*", " ", html).replace("&para;", "")


def test_search_finds_a_name_offline_and_fetches_nothing_from_outside(site):
    with Browser() as b:
        b.load((site / "reference" / "tensor.html").as_uri())
        b.eval("document.querySelector('.md-search__input').focus()")
        b.call("Input.insertText", session=True, text="softmax_cross_entropy")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not b.eval("document.querySelectorAll('.md-search-result__item').length"):
            time.sleep(0.1)
        links = b.eval("[...document.querySelectorAll('.md-search-result__item a')].map(a => a.href)")
        assert any("reference/ops.html#tinygrad_s2s.ops.softmax_cross_entropy" in u for u in links), links
        assert b.console == [], b.console
        outside = [u for u in b.requests if not u.startswith(("file:", "data:"))]
        assert outside == [], f"the site fetched from outside: {outside}"


def test_no_page_of_the_built_site_loads_a_script_style_or_font_from_outside(site):
    remote = re.compile(r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=["']?(?:https?:)?//""")
    for page in site.rglob("*.html"):
        assert not remote.search(page.read_text(encoding="utf-8")), f"{page.relative_to(site)} loads from outside"
    assert (site / "search" / "search_index.js").is_file(), "the offline search index was not written"


@pytest.mark.parametrize("name", ["exp", "sum", "reshape", "softmax"])
def test_the_reference_shows_each_tensor_op_method_with_its_signature_and_docstring(site, name):
    """`exp = exp` in Tensor's body renders as a method with tg.exp's parameters and text (docs/_ext)."""
    page = (site / "reference" / "tensor.html").read_text(encoding="utf-8")
    anchor = page.find(f'id="tinygrad_s2s.tensor.Tensor.{name}"')
    assert anchor >= 0, f"Tensor.{name} is not on the page"
    section = re.sub(r"\s+", " ", html_text(page[anchor:anchor + 6000]))
    signature = re.search(rf"{name} ?\(([^)]*)\)", section)
    assert signature, f"no signature for Tensor.{name}: {section[:300]}"
    shown = [re.split(r"[:=]", p)[0].strip(" *") for p in signature.group(1).split(",")]
    assert shown == list(inspect.signature(getattr(tg, name)).parameters), (shown, section[:300])
    plain = lambda text: re.sub(r"[`*\s]", "", html.unescape(text))   # noqa: E731  (tags' spacing differs)
    first_line = inspect.getdoc(getattr(tg, name)).splitlines()[0]
    assert plain(first_line)[:40] in plain(section), (first_line, section[:600])
