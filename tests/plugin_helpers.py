"""A plugin package written to a temporary folder: a module, and a ``*.dist-info`` whose entry points
``importlib.metadata`` reads, exactly as it reads those of a pip-installed distribution."""

from __future__ import annotations

import itertools
import sys
import textwrap
from pathlib import Path
from typing import Mapping

_COUNTER = itertools.count()


def write_plugin(folder: Path, source: str, entry_points: Mapping[str, Mapping[str, str]] | None = None,
                 monkeypatch=None) -> str:
    """Write ``source`` as a fresh module (its name is returned) and a distribution registering ``entry_points``
    (``{group: {name: "attr"}}``; ``attr`` is prefixed with ``<module>:``); put ``folder`` first on ``sys.path``."""
    module = f"mira_test_plugin_{next(_COUNTER)}_{abs(hash(str(folder))) % 10**6}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    if entry_points:
        dist = folder / f"{module}-0.1.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n", encoding="utf-8")
        lines = []
        for group, names in entry_points.items():
            lines.append(f"[{group}]")
            lines += [f"{name} = {module}:{attr}" for name, attr in names.items()]
        (dist / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if monkeypatch is not None:
        monkeypatch.syspath_prepend(str(folder))
    else:
        sys.path.insert(0, str(folder))
    return module
