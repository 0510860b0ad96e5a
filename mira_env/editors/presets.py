"""Known diffusers editing pipelines and how to call them: the preset registry.

A preset names a diffusers pipeline class, its default hub id, its sampling defaults and how an
edit is passed to it. :func:`resolve_preset` finds the preset of a preset name, a known hub id, or a
local folder (through its ``model_index.json`` ``_class_name``); any other diffusers pipeline whose
``__call__`` takes ``image`` and ``prompt`` works through :func:`generic_preset` with the pipeline's
own defaults. Nothing here imports torch or diffusers at import time.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from mira_env.errors import EditorError, describe
from mira_env.validate import check_choice

#: How the preset bounds the working area (the pixel area the pipeline denoises at):
#: ``"input"``   the pipeline works at the size of the image it is given (InstructPix2Pix);
#: ``"max_area"`` the pipeline takes a ``max_area`` call argument (FluxKontext);
#: ``"calculate_dimensions"`` the pipeline resizes inside ``__call__`` with its module's
#: ``calculate_dimensions(target_area, ratio)`` to a hard-coded area (QwenImageEdit, ~1 megapixel):
#: the editor caps that area while its call runs.
AREA_CONTROLS = ("input", "max_area", "calculate_dimensions")


@dataclass(frozen=True)
class EditorPreset:
    """How one diffusers editing pipeline is loaded and called."""

    name: str = field(metadata={"help": "Preset name, e.g. 'instruct-pix2pix'."})
    pipeline_class: str = field(metadata={"help": "diffusers pipeline class name, e.g. 'FluxKontextPipeline'."})
    hub_id: str | None = field(default=None, metadata={"help": "Default hub id of the checkpoint (None: generic)."})
    aliases: tuple[str, ...] = field(default=(), metadata={"help": "Other hub ids that load with this preset."})
    num_inference_steps: int | None = field(
        default=None, metadata={"help": "Denoising steps per edit (None: the pipeline's own default)."})
    guidance_scale: float | None = field(
        default=None, metadata={"help": "Text guidance (classifier-free, or the distilled guidance of Flux)."})
    image_guidance_scale: float | None = field(
        default=None, metadata={"help": "Image guidance of InstructPix2Pix (how closely to keep the input)."})
    true_cfg_scale: float | None = field(
        default=None, metadata={"help": "True classifier-free guidance of Qwen/Flux pipelines; active only "
                                        "with a negative prompt."})
    negative_prompt: str | None = field(
        default=None, metadata={"help": "Negative prompt sent with every edit (None: none). Qwen needs one "
                                        "(' ') for true CFG to run."})
    max_area: int | None = field(
        default=None, metadata={"help": "Default upper bound of the working area in pixels (None: the "
                                        "input's own size)."})
    multiple_of: int = field(default=8, metadata={"help": "Working height and width are rounded down to this."})
    area_control: str = field(default="input", metadata={"help": f"One of {AREA_CONTROLS}."})
    max_batch: int | None = field(
        default=None, metadata={"help": "Largest batch one pipeline call accepts (None: any)."})
    cuda_dtype: str = field(default="bfloat16", metadata={"help": "dtype for torch_dtype='auto' on CUDA."})
    call_kwargs: Mapping[str, Any] = field(
        default_factory=dict, metadata={"help": "Extra keyword arguments of every pipeline call."})
    description: str = field(default="", metadata={"help": "One line about the model."})

    def __post_init__(self) -> None:
        check_choice(f"preset {self.name!r}: area_control", self.area_control, AREA_CONTROLS, error=EditorError)
        if not isinstance(self.multiple_of, int) or self.multiple_of < 1:
            raise EditorError(f"preset {self.name!r}: multiple_of={describe(self.multiple_of)} must be a "
                              f"positive int")
        if self.max_batch is not None and (not isinstance(self.max_batch, int) or self.max_batch < 1):
            raise EditorError(f"preset {self.name!r}: max_batch={describe(self.max_batch)} must be None or a "
                              f"positive int")

    @property
    def hub_ids(self) -> tuple[str, ...]:
        """Every hub id that resolves to this preset."""
        return ((self.hub_id,) if self.hub_id else ()) + self.aliases


PRESETS: dict[str, EditorPreset] = {
    preset.name: preset
    for preset in (
        EditorPreset(
            name="instruct-pix2pix", pipeline_class="StableDiffusionInstructPix2PixPipeline",
            hub_id="timbrooks/instruct-pix2pix", num_inference_steps=20, guidance_scale=7.5,
            image_guidance_scale=1.5, max_area=None, multiple_of=8, area_control="input",
            cuda_dtype="float16", description="InstructPix2Pix (SD 1.5 based), 512px, fast"),
        EditorPreset(
            name="flux-kontext", pipeline_class="FluxKontextPipeline",
            hub_id="black-forest-labs/FLUX.1-Kontext-dev", num_inference_steps=28, guidance_scale=2.5,
            max_area=1024 * 1024, multiple_of=16, area_control="max_area",
            description="FLUX.1 Kontext [dev], guidance-distilled, ~1 megapixel"),
        EditorPreset(
            name="qwen-image-edit", pipeline_class="QwenImageEditPipeline", hub_id="Qwen/Qwen-Image-Edit",
            num_inference_steps=50, true_cfg_scale=4.0, negative_prompt=" ", max_area=1024 * 1024,
            multiple_of=32, area_control="calculate_dimensions",
            description="Qwen-Image-Edit (20B MMDiT + Qwen2.5-VL), ~1 megapixel"),
        EditorPreset(
            name="qwen-image-edit-plus", pipeline_class="QwenImageEditPlusPipeline",
            hub_id="Qwen/Qwen-Image-Edit-2509", aliases=("Qwen/Qwen-Image-Edit-2511",), num_inference_steps=40,
            true_cfg_scale=4.0, negative_prompt=" ", max_area=1024 * 1024, multiple_of=32,
            area_control="calculate_dimensions", max_batch=1,
            description="Qwen-Image-Edit-2509 (multi-image); diffusers 0.42 runs one prompt per call"),
    )
}

_BY_CLASS = {preset.pipeline_class: preset for preset in PRESETS.values()}
_BY_HUB_ID = {hub_id.lower(): preset for preset in PRESETS.values() for hub_id in preset.hub_ids}


def preset_names() -> tuple[str, ...]:
    """The names of the known presets."""
    return tuple(PRESETS)


def preset_for_class(class_name: str) -> EditorPreset:
    """The preset of a known pipeline class, else a generic preset for that class."""
    return _BY_CLASS.get(class_name) or generic_preset(class_name)


def generic_preset(class_name: str) -> EditorPreset:
    """A preset for any pipeline class: the pipeline's own call defaults, image passed as ``image``."""
    return EditorPreset(name=f"generic:{class_name}", pipeline_class=class_name, area_control="input",
                        description="any diffusers pipeline whose __call__ takes image and prompt")


def get_preset(name: str) -> EditorPreset:
    """The preset called ``name``; :class:`EditorError` listing the known ones otherwise."""
    if not isinstance(name, str) or name not in PRESETS:
        raise EditorError(f"preset={describe(name)} is not a known preset; choose one of "
                          f"{', '.join(repr(n) for n in PRESETS)}, or pass pipeline_class='<diffusers "
                          f"pipeline class name>' for another pipeline")
    return PRESETS[name]


def looks_like_local_path(model: str) -> bool:
    """True when ``model`` can only be a filesystem path (not an ``org/name`` hub id)."""
    return (model.startswith((".", "/", "~", "\\")) or os.path.isabs(model) or "\\" in model
            or model.count("/") > 1 or os.path.exists(model))


def read_model_index(folder: str | Path) -> dict:
    """The parsed ``model_index.json`` of a local pipeline folder."""
    index = Path(folder) / "model_index.json"
    if not index.is_file():
        raise EditorError(f"model={str(folder)!r} is a folder without model_index.json; point it at a folder "
                          f"written by DiffusionPipeline.save_pretrained (or a hub snapshot)")
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EditorError(f"{str(index)!r} is not readable JSON ({exc}); re-save the pipeline") from exc
    if not isinstance(data, dict) or not isinstance(data.get("_class_name"), str):
        raise EditorError(f"{str(index)!r} has no '_class_name' string; re-save the pipeline")
    return data


@dataclass(frozen=True)
class ResolvedModel:
    """Where to load from and how to call it."""

    model: str  # hub id or local folder passed to from_pretrained
    preset: EditorPreset
    local: bool
    class_known: bool  # False: the class comes from the hub's model_index.json at load time


def resolve_preset(model: str, preset: str | None = None, pipeline_class: str | None = None) -> ResolvedModel:
    """Resolve ``(model, preset, pipeline_class)`` to a checkpoint and a preset.

    ``model`` may be a preset name (its default hub id is used), a hub id, or a local folder. The
    preset comes from, in order: ``preset``; ``pipeline_class``; a local folder's
    ``model_index.json``; a known hub id; else it is generic and the class is read from the hub
    checkpoint's ``model_index.json`` when it loads (``class_known=False``).
    """
    if not isinstance(model, str) or not model.strip():
        raise EditorError(f"model={describe(model)} must be a preset name ({', '.join(PRESETS)}), a hub id "
                          f"such as 'timbrooks/instruct-pix2pix' or a local pipeline folder")
    if pipeline_class is not None and not isinstance(pipeline_class, str):
        raise EditorError(f"pipeline_class={describe(pipeline_class)} must be a diffusers pipeline class name")
    chosen = get_preset(preset) if preset is not None else None
    if model in PRESETS:
        chosen = chosen or PRESETS[model]
        if chosen.name != model:
            raise EditorError(f"model={model!r} names a preset, but preset={preset!r} was also given; pass one")
        model = chosen.hub_id
    local = looks_like_local_path(model)
    index_class = None
    if local:
        folder = Path(model).expanduser()
        if not folder.exists():
            raise EditorError(f"model={model!r}: local path does not exist; pass an existing pipeline folder "
                              f"or a hub id such as 'timbrooks/instruct-pix2pix'")
        index_class = read_model_index(folder)["_class_name"]
        model = str(folder)
    if pipeline_class is not None:
        if chosen is not None and chosen.pipeline_class != pipeline_class:
            raise EditorError(f"preset={chosen.name!r} uses {chosen.pipeline_class}, but pipeline_class="
                              f"{pipeline_class!r} was given; pass one of them")
        chosen = chosen or preset_for_class(pipeline_class)
    if index_class is not None:
        if chosen is not None and chosen.pipeline_class != index_class and chosen.name in PRESETS:
            raise EditorError(f"{model!r} holds a {index_class} (model_index.json), not the "
                              f"{chosen.pipeline_class} of preset {chosen.name!r}; drop preset= or fix the path")
        if chosen is not None and chosen.pipeline_class != index_class:
            raise EditorError(f"{model!r} holds a {index_class} (model_index.json), not pipeline_class="
                              f"{chosen.pipeline_class!r}; drop pipeline_class= or fix the path")
        chosen = chosen or preset_for_class(index_class)
    if chosen is None:
        chosen = _BY_HUB_ID.get(model.lower())
    if chosen is None:
        return ResolvedModel(model=model, preset=generic_preset("DiffusionPipeline"), local=local, class_known=False)
    return ResolvedModel(model=model, preset=chosen, local=local, class_known=True)


def with_overrides(preset: EditorPreset, **overrides: Any) -> EditorPreset:
    """``preset`` with the non-None ``overrides`` applied."""
    return replace(preset, **{key: value for key, value in overrides.items() if value is not None})


__all__ = ["AREA_CONTROLS", "PRESETS", "EditorPreset", "ResolvedModel", "generic_preset", "get_preset",
           "looks_like_local_path", "preset_for_class", "preset_names", "read_model_index", "resolve_preset",
           "with_overrides"]
