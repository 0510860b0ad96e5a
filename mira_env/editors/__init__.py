"""Editors behind one batched protocol; heavy backends are imported only when built."""

from __future__ import annotations

from typing import Any

from mira_env.editors.base import EDIT_STATUS_KEY, STATE_KEY, Editor, EditorInfo, IdentityEditor, check_batch, edit_status
from mira_env.errors import ConfigError, describe


def make_editor(spec: Any, **kwargs: Any) -> Editor:
    """Build an editor from a spec.

    - an object with ``edit(...)``: returned as is (``kwargs`` must be empty);
    - ``"identity"``: :class:`IdentityEditor`;
    - ``"shapes"``: the shapes-world :class:`~mira_env.shapes.editor.ShapesEditor` (``kwargs`` go to it);
    - anything else: a diffusers preset name, hub id or local path for
      :class:`~mira_env.editors.diffusers_editor.DiffusersEditor` (``kwargs`` go to it).
    """
    if hasattr(spec, "edit") and not isinstance(spec, str):
        if kwargs:
            raise ConfigError(f"editor options {sorted(kwargs)} given with an editor object; set them on it")
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"editor={describe(spec)}: expected an Editor, 'identity', 'shapes', a diffusers "
                          f"preset name, a hub id or a local path")
    if spec == "identity":
        return IdentityEditor()
    if spec == "shapes":
        from mira_env.shapes.editor import ShapesEditor

        return ShapesEditor(**kwargs)
    from mira_env.editors.diffusers_editor import DiffusersEditor

    return DiffusersEditor(spec, **kwargs)


__all__ = ["EDIT_STATUS_KEY", "STATE_KEY", "Editor", "EditorInfo", "IdentityEditor", "check_batch", "edit_status",
           "make_editor"]
