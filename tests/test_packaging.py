"""One import namespace: agents/, rewards/ and train/ install as mira_env.agents / .rewards / .train.

The folders stay at the repository top (the project's layout); setup.cfg maps them into the
``mira_env`` package with ``package_dir``, so no generic top-level name (``agents`` is the OpenAI
Agents SDK's import name, PyPI has ``rewards`` and ``train``) is installed, in a wheel or in an
editable install. These tests check the mapping, that the project never imports its folders under
their bare names (a stand-in ``agents`` first on ``sys.path`` cannot shadow it), and the layering
rules: ``mira_env`` core -> ``mira_env.rewards`` -> ``mira_env.agents`` -> ``mira_env.train``.
"""

from __future__ import annotations

import ast
import configparser
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAPPED = {"agents": "mira_env.agents", "rewards": "mira_env.rewards", "train": "mira_env.train"}
BARE = tuple(MAPPED)


def _package_dirs() -> dict[str, Path]:
    """Installed package name -> folder, for every folder with an __init__.py."""
    found = {}
    for top, name in [("mira_env", "mira_env"), *MAPPED.items()]:
        for init in sorted((ROOT / top).rglob("__init__.py")):
            rel = init.parent.relative_to(ROOT / top)
            found[".".join([name, *rel.parts])] = init.parent
    return found


def _module_names() -> list[str]:
    names = []
    for package, folder in _package_dirs().items():
        names.append(package)
        names += [f"{package}.{path.stem}" for path in sorted(folder.glob("*.py")) if path.name != "__init__.py"]
    return names


def _setup_cfg() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return config


def test_setup_cfg_maps_the_folders_and_lists_every_package():
    options = _setup_cfg()["options"]
    package_dir = dict(line.split(" = ") for line in options["package_dir"].strip().splitlines())
    assert package_dir == {"mira_env": "mira_env", **{v: k for k, v in MAPPED.items()}}
    listed = options["packages"].split()
    assert sorted(listed) == sorted(_package_dirs()), "setup.cfg [options] packages must list every package folder"
    entry = _setup_cfg()["options.entry_points"]["console_scripts"].strip()
    assert entry == "mira = mira_env.train.cli:main"


def test_no_module_imports_a_bare_folder_name():
    offenders = []
    for path in [p for top in ("mira_env", *BARE, "tests", "bench", "scripts") for p in (ROOT / top).rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in names if n.split(".")[0] in BARE]
    assert offenders == []


# which installed top-level part each part may import (mira_env core is everything else in mira_env)
ALLOWED = {
    "core": {"core"},
    "mira_env.rewards": {"core", "mira_env.rewards"},
    "mira_env.agents": {"core", "mira_env.rewards", "mira_env.agents"},
    "mira_env.train": {"core", "mira_env.rewards", "mira_env.agents", "mira_env.train"},
}


def _layer(module: str) -> str | None:
    if module != "mira_env" and not module.startswith("mira_env."):
        return None
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 and parts[1] in BARE else "core"


def test_layering_rules_hold_for_every_import():
    """mira_env core imports no mira_env.rewards/agents/train; rewards no agents/train; agents no train."""
    violations = []
    for package, folder in _package_dirs().items():
        layer = _layer(package)
        for path in folder.glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    targets = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    targets = [node.module] + ([f"{node.module}.{a.name}" for a in node.names] if node.module == "mira_env"
                                               else [])
                else:
                    continue
                for target in targets:
                    other = _layer(target)
                    if other is not None and other not in ALLOWED[layer]:
                        violations.append(f"{path.relative_to(ROOT)}:{node.lineno} ({layer}) imports {target} ({other})")
    assert violations == []


def test_a_stand_in_agents_package_does_not_shadow_the_project(tmp_path):
    """A user's (or the OpenAI Agents SDK's) ``agents``, ``rewards`` and ``train`` first on sys.path."""
    for name in BARE:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"STAND_IN = {name!r}\n")
    code = f"""
import importlib, json, sys
sys.path.insert(0, {str(tmp_path)!r})
modules = {json.dumps(_module_names())}
for name in modules:
    importlib.import_module(name)
import agents, rewards, train
from mira_env.train.cli import main
assert main(["run", "--agents", "oracle,one-shot", "--tasks", "2", "--progress", "false", "--images", "none",
             "--out", {str(tmp_path / "run")!r}]) in (0, None)
print(json.dumps({{
    "stand_ins": [agents.STAND_IN, rewards.STAND_IN, train.STAND_IN],
    "ours": {{name: sys.modules["mira_env." + name].__file__ for name in ("agents", "rewards", "train")}},
    "bare_from_repo": sorted(m for m, mod in sys.modules.items() if m.split(".")[0] in {list(BARE)!r}
                             and {str(tmp_path)!r} not in str(getattr(mod, "__file__", ""))),
}}))
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["stand_ins"] == list(BARE)
    assert result["ours"] == {name: str(ROOT / name / "__init__.py") for name in BARE}
    assert result["bare_from_repo"] == []


@pytest.mark.parametrize("name", BARE)
def test_the_bare_folder_name_refuses_to_import(name):
    """From the repository root (cwd on sys.path) the folder is reachable as ``agents``: it says what to import."""
    done = subprocess.run([sys.executable, "-c", f"import {name}"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert (f"ImportError: this folder is the package mira_env.{name} of mira-env, imported as {name!r}; "
            f"import mira_env.{name} (pip install -e . from the repository root)") in done.stderr


def test_the_installed_project_has_no_generic_top_level_name(tmp_path):
    """In this environment (pip install -e .): outside the repository only mira_env resolves."""
    code = ("import importlib.util as u, json, mira_env.agents as a; "
            "print(json.dumps([[n, bool(u.find_spec(n))] for n in ('agents', 'rewards', 'train')] + [a.__file__]))")
    done = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    if done.returncode != 0 and "No module named 'mira_env'" in done.stderr:
        pytest.skip("mira-env is not installed in this environment (the README's test command installs it)")
    assert done.returncode == 0, done.stderr
    *found, agents_file = json.loads(done.stdout)
    assert found == [["agents", False], ["rewards", False], ["train", False]]
    assert agents_file == str(ROOT / "agents" / "__init__.py")


@pytest.mark.slow
def test_the_wheel_holds_one_top_level_package(tmp_path):
    """``pip wheel`` of a copy of the tracked tree: every file under mira_env/ (or its dist-info)."""
    tree = tmp_path / "src"
    listing = ["git", "ls-files", "--cached", "--others", "--exclude-standard"]
    files = subprocess.run(listing, cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    if not files:
        pytest.skip("not a git checkout")
    for rel in files:
        if rel.split("/")[0] in ("mira_env", *BARE) or rel in ("setup.cfg", "pyproject.toml", "README.md"):
            (tree / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, tree / rel)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path / "dist"), str(tree)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("mira_env-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        top_level = archive.read(next(n for n in names if n.endswith(".dist-info/top_level.txt"))).decode().split()
    assert top_level == ["mira_env"]
    assert sorted({n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}) == ["mira_env"]
    for name in BARE:
        assert f"mira_env/{name}/__init__.py" in names
    assert "mira_env/actions.py" in names and "mira_env/train/cli.py" in names
