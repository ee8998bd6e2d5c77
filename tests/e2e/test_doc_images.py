"""The documentation's pictures are not where its commands write: running `tinygrad-s2s graph ...` as
README.md and docs/ show it, in the repository, must not overwrite a picture they show (it once
rewrote graphviz_out/attention.svg), and what it writes is ignored by git."""
import os
import re
import shutil
import subprocess
import sys

import pytest

from paths import REPO_ROOT
from small_models import registered

PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").rglob("*.md"))]


def _shown_images() -> set:
    """Every local picture a page links to (`![...](path)` and `[...](path.png)`), as repo paths."""
    shown = set()
    for page in PAGES:
        for link in re.findall(r"\]\(([^)\s]+\.(?:png|svg|jpg|gif))\)", page.read_text(encoding="utf-8")):
            if "://" not in link:
                shown.add(os.path.normpath(os.path.relpath(page.parent / link, REPO_ROOT)))
    return shown


def _readme_commands(prefix: str) -> list:
    """The pages' shell lines that start with `prefix`, comments cut off, as argument lists."""
    found, fence = [], None
    for line in "\n".join(page.read_text(encoding="utf-8") for page in PAGES).splitlines():
        if line.startswith("```"):
            fence = None if fence is not None else line[3:].strip()
        elif fence in ("bash", "sh", "console", "") and line.startswith(prefix):
            found.append(line.split(" #", 1)[0].split())
    return found


def _git(*args):
    return subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def git_checkout():
    if shutil.which("git") is None or _git("rev-parse", "--git-dir").returncode != 0:
        pytest.skip("not a git checkout (an installed copy has no README pictures to protect)")


def test_the_docs_show_pictures_that_git_tracks(git_checkout):
    shown = _shown_images()
    assert len(shown) >= 8, shown
    for path in sorted(shown):
        assert (REPO_ROOT / path).is_file(), f"the docs show {path}, which does not exist"
        assert _git("check-ignore", "-q", path).returncode == 1, f"the docs show {path}, which git ignores"


def test_the_docs_graph_commands_write_nowhere_the_docs_read(git_checkout, tmp_path):
    if not (registered("attention") and registered("transformer")):
        pytest.skip("the zoo's models are not registered")
    commands = []
    for c in _readme_commands("tinygrad-s2s graph"):      # each distinct command once (README and docs repeat some)
        if c not in commands:
            commands.append(c)
    assert {c[2] for c in commands} == {"attention", "transformer"}, commands
    shown = _shown_images()
    for command in commands:
        # run where a user would (a folder laid out like the repository), then see what appeared
        work = tmp_path / command[2]
        work.mkdir()
        proc = subprocess.run([sys.executable, "-m", "tinygrad_s2s", *command[1:]], cwd=work, capture_output=True,
                              text=True, timeout=240)
        assert proc.returncode == 0, proc.stderr
        written = [os.path.relpath(p, work) for p in work.rglob("*") if p.is_file()]
        assert written == [proc.stdout.strip()], (written, proc.stdout)
        for path in written:
            assert path not in shown, f"`{' '.join(command)}` overwrites {path}, a picture the docs show"
            assert _git("check-ignore", "-q", path).returncode == 0, \
                f"`{' '.join(command)}` writes {path}, which git would see as a change in the repository"


def test_attention_maps_default_output_is_ignored_and_no_readme_picture(git_checkout):
    from tinygrad_s2s.cli.graph import DEFAULT_OUT_DIR

    path = os.path.join(DEFAULT_OUT_DIR, "attention_map.png")      # cmd_attention_map's default --out
    assert path not in _shown_images()
    assert _git("check-ignore", "-q", path).returncode == 0
    assert (REPO_ROOT / DEFAULT_OUT_DIR).is_dir()                    # the folder itself stays in the checkout
