"""README.md and docs/ point only at files a fresh clone has.

Checked: every relative markdown link (``[text](path)``, ``#anchor`` stripped) resolves from the page's folder, and
every code span naming a file in a tracked top-level folder (```docs/training.md```, ```rewards/base.py```) exists.
Installed names are mapped back to their folders (``mira_env/rewards/...`` is ``rewards/...``, see ``package_dir``
in setup.cfg) and a ``<placeholder>`` matches any name. Nothing may point outside the repository.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|!\[[^\]]*\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\s]+)`")
#: installed subpackages that live in a top-level folder of their own (setup.cfg package_dir)
NAMESPACE = {"mira_env/agents/": "agents/", "mira_env/rewards/": "rewards/", "mira_env/train/": "train/"}
#: how a reference outside the repository reads: the author's machine or a sibling folder of the checkout
OUTSIDE = re.compile(r"(?:\.\./shared|/work/|shared folder of the project|\bthis (?:CPU|machine)\b)")


def _tracked_top_folders() -> set[str]:
    try:
        listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):  # an sdist without git: every folder present counts
        return {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")}
    return {line.split("/")[0] for line in listed.splitlines() if "/" in line}


def _exists(path: str, base: Path) -> bool:
    for installed, folder in NAMESPACE.items():
        if path.startswith(installed):
            path = folder + path[len(installed):]
    if "<" in path:
        return any(base.glob(re.sub(r"<[^>]*>", "*", path)))
    return (base / path).exists()


def _references(page: Path) -> list[tuple[str, Path]]:
    text = page.read_text(encoding="utf-8")
    found = []
    for match in LINK.finditer(text):
        target = (match.group(1) or match.group(2)).split("#")[0]
        if target and not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # not http:, mailto:, ...
            found.append((target, page.parent))
    tops = _tracked_top_folders()
    for match in CODE_SPAN.finditer(text):
        span = match.group(1).rstrip(".,:;")
        if "/" in span and span.split("/")[0] in tops and re.search(r"\.[A-Za-z]{1,6}$", span):
            found.append((span, ROOT))
    return found


def test_the_pages_name_files():
    assert (ROOT / "README.md").is_file() and len(PAGES) > 1
    assert sum(len(_references(page)) for page in PAGES) >= 10  # the check below has something to check


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_reference_resolves(page):
    missing = [target for target, base in _references(page) if not _exists(target, base)]
    assert not missing, f"{page.relative_to(ROOT)} points at files a clone does not have: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_points_outside_the_repository(page):
    text = page.read_text(encoding="utf-8")
    hits = [m.group(0) for m in OUTSIDE.finditer(text)]
    assert not hits, f"{page.relative_to(ROOT)} refers to things outside the repository: {hits}"
