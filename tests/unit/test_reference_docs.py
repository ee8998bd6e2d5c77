"""The documentation site's reference covers every public name: `tg.__all__` and each subpackage's
`__all__` (a module without one: its public names) against the `:::` directives of docs/reference/."""
import importlib

import pytest

import tinygrad_s2s as tg
from paths import REPO_ROOT
from reference_docs import REFERENCE, documented

PUBLIC = ["nn", "ops", "autograd", "models", "data", "training", "onnx", "testing", "viz", "tracking", "torch_export"]
NOT_API = {"allocator", "backend", "random", "nn", "onnx", "optim", "testing", "viz"}   # tg.<subpackage> itself


def test_every_subpackages_public_names_are_in_the_reference():
    docs = documented()
    for name in PUBLIC:
        module = f"tinygrad_s2s.{name}"
        missing = set(importlib.import_module(module).__all__) - docs.get(module, set())
        assert not missing, f"docs/reference/ lacks {sorted(missing)} of {module}.__all__"


def test_every_name_of_tg_all_is_in_the_reference_through_its_home():
    docs = documented()
    everything = set().union(*docs.values())
    missing = [n for n in tg.__all__ if n not in NOT_API and n not in everything]
    assert not missing, f"tg.__all__ names without a reference entry: {missing}"


@pytest.mark.parametrize("page", sorted(p.name for p in REFERENCE.glob("*.md")))
def test_each_reference_page_is_in_the_site_navigation(page):
    assert f"reference/{page}" in (REPO_ROOT / "mkdocs.yml").read_text(encoding="utf-8")
