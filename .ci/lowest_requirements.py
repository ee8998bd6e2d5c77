"""The lowest version of every dependency pyproject.toml allows (its own and the dev extra's), one pin a
line, for .ci/lowest: what we claim to support is what we test. A requirement without a floor stays
as written."""
import re
import tomllib
from pathlib import Path

project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
for req in project["dependencies"] + project["optional-dependencies"]["dev"]:
    name, floor = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(?:>=\s*([\w.]+))?", req.strip()).groups()
    if name != "ruff":            # the linter runs in the main venv; it does not run the tests
        print(f"{name}=={floor}" if floor else name)
