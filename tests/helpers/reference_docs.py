"""What the documentation site's reference lists: the names each `:::` directive of docs/reference/
documents (shared by the reference-coverage and docstring-section tests)."""
import importlib
import re

from paths import REPO_ROOT

REFERENCE = REPO_ROOT / "docs" / "reference"


def documented() -> dict[str, set]:
    """module -> the names its directive lists (every public name when it says `members: true`)."""
    found = {}
    for page in REFERENCE.glob("*.md"):
        for module, options in re.findall(r"(?m)^::: ([\w.]+)\n((?:    .*\n)*)", page.read_text(encoding="utf-8")):
            names = set(re.findall(r"(?m)^        - (\w+)$", options))
            parent, _, leaf = module.rpartition(".")
            if not _is_module(module):              # one object (`tinygrad_s2s.tensor.Tensor`): that name
                assert hasattr(importlib.import_module(parent), leaf), f"{page.name}: no {module}"
                found.setdefault(parent, set()).add(leaf)
                continue
            if "members: true" in options or not names:
                mod = importlib.import_module(module)
                names = set(getattr(mod, "__all__", [n for n in vars(mod) if not n.startswith("_")]))
            found.setdefault(module, set()).update(names)
    return found


def _is_module(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError:
        return False
    return True
