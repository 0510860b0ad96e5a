"""Editors behind one batched protocol; heavy backends are imported only when built."""

from __future__ import annotations

import importlib
import os
import re
from typing import Any

from mira_env.editors.base import EDIT_STATUS_KEY, STATE_KEY, Editor, EditorInfo, IdentityEditor, check_batch, edit_status
from mira_env.errors import ConfigError, describe


def make_editor(spec: Any, **kwargs: Any) -> Editor:
    """Build an editor from a spec.

    - an object with ``edit(...)``: returned as is (``kwargs`` must be empty);
    - ``"identity"``: :class:`IdentityEditor`;
    - ``"shapes"``: the shapes-world :class:`~mira_env.shapes.editor.ShapesEditor` (``kwargs`` go to it);
    - ``"remote:http://host:port"`` (or several comma-separated URLs): a
      :class:`~mira_env.editors.remote.RemoteEditor` for a ``mira serve editor`` service (``kwargs`` go to it);
    - ``"pkg.module:factory"``: your own editor, ``factory(**kwargs)`` (a class or a function) imported from an
      installed or importable module; it must return an object with ``edit(images, instructions, seeds)``
      (see docs/serving.md for wrapping a model with no diffusers pipeline, such as Step1X-Edit);
    - anything else: a diffusers preset name, hub id or local path for
      :class:`~mira_env.editors.diffusers_editor.DiffusersEditor` (``kwargs`` go to it).
    """
    if hasattr(spec, "edit") and not isinstance(spec, str):
        if kwargs:
            raise ConfigError(f"editor options {sorted(kwargs)} given with an editor object; set them on it")
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"editor={describe(spec)}: expected an Editor, 'identity', 'shapes', "
                          f"'remote:http://host:port', 'pkg.module:factory', a diffusers preset name, a hub id or a "
                          f"local path")
    if spec == "identity":
        return IdentityEditor()
    if spec == "shapes":
        from mira_env.shapes.editor import ShapesEditor

        return ShapesEditor(**kwargs)
    if spec.startswith("remote:"):
        from mira_env.editors.remote import RemoteEditor

        return RemoteEditor(spec[len("remote:"):], **kwargs)
    if IMPORT_SPEC.match(spec) and not os.path.exists(spec):
        return _from_import_path(spec, kwargs)
    from mira_env.editors.diffusers_editor import DiffusersEditor

    return DiffusersEditor(spec, **kwargs)


#: ``pkg.module:factory`` (dotted module path, a colon, a dotted attribute path).
IMPORT_SPEC = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def load_object(spec: str, what: str = "editor") -> Any:
    """The object named by ``pkg.module:attr.path``; :class:`ConfigError` naming the missing piece."""
    if not IMPORT_SPEC.match(spec):
        raise ConfigError(f"{what}={spec!r} is not an import path of the form 'pkg.module:factory'")
    module_name, attr_path = spec.split(":", 1)
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{what}={spec!r}: cannot import module {module_name!r} ({exc}); install the package "
                          "that provides it or add its folder to PYTHONPATH") from None
    for part in attr_path.split("."):
        if not hasattr(target, part):
            raise ConfigError(f"{what}={spec!r}: module {module_name!r} has no attribute {attr_path!r}")
        target = getattr(target, part)
    return target


def _from_import_path(spec: str, kwargs: dict) -> Editor:
    factory = load_object(spec)
    if not callable(factory):
        raise ConfigError(f"editor={spec!r} names {describe(factory)}, which is not callable; point it at an editor "
                          "class or a function that builds one")
    editor = factory(**kwargs)
    if not callable(getattr(editor, "edit", None)):
        raise ConfigError(f"editor={spec!r} built {describe(editor)}, which has no edit(images, instructions, seeds) "
                          "method")
    if not isinstance(getattr(editor, "info", None), EditorInfo):
        name = getattr(editor, "name", None) or spec
        try:
            editor.info = EditorInfo(name=str(name))
        except AttributeError:
            raise ConfigError(f"editor={spec!r} built {type(editor).__name__}, which has no EditorInfo 'info' "
                              "attribute and does not accept one; set self.info = EditorInfo(name=...)") from None
    return editor


__all__ = ["EDIT_STATUS_KEY", "STATE_KEY", "Editor", "EditorInfo", "IdentityEditor", "check_batch", "edit_status",
           "load_object", "make_editor"]
