"""``DiffusersEditor``: any diffusers image-editing pipeline behind the batched ``Editor`` protocol.

Loading: ``PipelineClass.from_pretrained(model, dtype=...)`` where ``PipelineClass`` is the preset's
class (diffusers 0.42 renamed ``torch_dtype`` to ``dtype``; the option keeps the name ``torch_dtype``)
or ``DiffusionPipeline`` for an unknown hub id, which then reads the class from the
checkpoint's ``model_index.json``). Loading is EAGER (in the constructor) unless ``lazy=True``, in
which case the first :meth:`DiffusersEditor.edit` (or :meth:`DiffusersEditor.load`) loads it; the
preset, class, local path and the class's ``image`` argument are checked in the constructor either way.

One ``edit`` batch is ONE pipeline call, split only where one call cannot hold it: at ``max_batch``
(the smaller of the option and the preset's limit: QwenImageEditPlus takes one prompt per call in
diffusers 0.42) and between images whose working sizes differ (a pipeline call denoises one latent
shape). Per-sample seeds go in as a list of ``torch.Generator``, one per image, on the execution device.

Working size: ``height``/``width`` when given; else the input's aspect ratio scaled to the working
area (``max_area`` option, else the preset's: ~1 megapixel for Flux Kontext and Qwen; the input's own
size for InstructPix2Pix), rounded down to the preset's ``multiple_of``. Inputs are resized to it before
the call and outputs resized back to the input size (``resize_to_input=True``), so an episode keeps
one resolution. Qwen-Image-Edit pipelines resize internally to a hard-coded area through their
module's ``calculate_dimensions``; while a call runs, the editor caps that area at the working area
(a module-level patch taken under a lock, so concurrent calls in one process are serialised).
"""

from __future__ import annotations

import contextlib
import inspect
import math
import threading
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from PIL import Image

from mira_env.editors.base import EditorInfo, check_batch
from mira_env.editors.presets import EditorPreset, ResolvedModel, preset_for_class, resolve_preset
from mira_env.errors import ConfigError, EditorError, choice_error, describe
from mira_env.validate import check_float, check_ints

TORCH_DTYPES = ("auto", "float32", "float16", "bfloat16")
_PATCH_LOCK = threading.RLock()
_NO_BATCH_LIMIT = 1_000_000


@dataclass
class DiffusersEditorConfig:
    """Options of :class:`DiffusersEditor`; ``None`` means "the preset's default"."""

    torch_dtype: str = field(default="auto", metadata={
        "help": f"One of {TORCH_DTYPES}; 'auto' = the preset's CUDA dtype on CUDA, float32 on CPU."})
    device: str | None = field(default=None, metadata={
        "help": "torch device, e.g. 'cuda', 'cuda:1', 'cpu'; None = 'cuda' when available, else 'cpu'."})
    cpu_offload: bool = field(default=False, metadata={
        "help": "enable_model_cpu_offload(device) instead of moving the whole pipeline to the device."})
    num_inference_steps: int | None = field(default=None, metadata={"help": "Denoising steps per edit."})
    guidance_scale: float | None = field(default=None, metadata={"help": "Text guidance scale."})
    image_guidance_scale: float | None = field(default=None, metadata={
        "help": "Image guidance scale (InstructPix2Pix)."})
    true_cfg_scale: float | None = field(default=None, metadata={
        "help": "True CFG scale (Qwen, Flux); needs a negative prompt."})
    negative_prompt: str | None = field(default=None, metadata={"help": "Negative prompt of every edit."})
    height: int | None = field(default=None, metadata={
        "help": "Working height in pixels (with width); overrides max_area."})
    width: int | None = field(default=None, metadata={"help": "Working width in pixels (with height)."})
    max_area: int | None = field(default=None, metadata={
        "help": "Working area in pixels: inputs are scaled (up or down, aspect kept) to it. Caps "
                "Qwen-Image-Edit's internal ~1 MP resize and sets FluxKontext's max_area."})
    max_batch: int | None = field(default=None, metadata={
        "help": "Largest batch of one pipeline call (None: the preset's limit, else unlimited)."})
    resize_to_input: bool = field(default=True, metadata={
        "help": "Resize each output back to its input's size."})
    call_kwargs: dict = field(default_factory=dict, metadata={
        "help": "Extra keyword arguments of every pipeline call (override the preset's)."})
    load_kwargs: dict = field(default_factory=dict, metadata={
        "help": "Extra keyword arguments of from_pretrained (revision, variant, local_files_only, ...)."})
    lazy: bool = field(default=False, metadata={"help": "Load the weights at the first edit, not now."})

    def __post_init__(self) -> None:
        if self.torch_dtype not in TORCH_DTYPES:
            raise choice_error("torch_dtype", self.torch_dtype, TORCH_DTYPES)
        if self.device is not None and (not isinstance(self.device, str) or not self.device):
            raise ConfigError(f"device={describe(self.device)} must be a torch device string such as 'cuda' "
                              f"or 'cpu', or None for auto")
        for name in ("cpu_offload", "resize_to_input", "lazy"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}={describe(getattr(self, name))} must be a bool")
        if self.cpu_offload and self.device is not None and self.device.startswith("cpu"):
            raise ConfigError("cpu_offload=True moves models between the CPU and an accelerator; with "
                              "device='cpu' there is nothing to offload: drop cpu_offload or pick device='cuda'")
        check_ints(self, ("num_inference_steps", "height", "width", "max_area", "max_batch"), allow_none=True)
        for name in ("guidance_scale", "image_guidance_scale", "true_cfg_scale"):
            check_float(name, getattr(self, name), minimum=0, allow_none=True)
        if (self.height is None) != (self.width is None):
            raise ConfigError(f"height={self.height!r} and width={self.width!r} must be given together (or "
                              f"neither; use max_area to keep the input's aspect ratio)")
        if self.height is not None and self.max_area is not None:
            raise ConfigError(f"height/width ({self.height}x{self.width}) and max_area={self.max_area} both "
                              f"set the working size; pass one of them")
        if self.negative_prompt is not None and not isinstance(self.negative_prompt, str):
            raise ConfigError(f"negative_prompt={describe(self.negative_prompt)} must be a str or None")
        for name in ("call_kwargs", "load_kwargs"):
            if not isinstance(getattr(self, name), dict):
                raise ConfigError(f"{name}={describe(getattr(self, name))} must be a dict")
        reserved = sorted({"image", "prompt", "generator", "output_type"} & set(self.call_kwargs))
        if reserved:
            raise ConfigError(f"call_kwargs sets {reserved}, which DiffusersEditor passes itself; remove them")


def _call_parameters(pipeline_class: type) -> set[str]:
    """The named parameters of ``pipeline_class.__call__`` (``**kwargs`` not counted)."""
    params = inspect.signature(pipeline_class.__call__).parameters
    return {name for name, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _pipeline_class(name: str) -> type:
    import diffusers

    cls = getattr(diffusers, name, None)
    if not (isinstance(cls, type) and issubclass(cls, diffusers.DiffusionPipeline)):
        raise EditorError(f"pipeline_class={name!r} is not a diffusers pipeline class (diffusers "
                          f"{diffusers.__version__}); use a class name such as 'FluxKontextPipeline' or "
                          f"'StableDiffusionInstructPix2PixPipeline'")
    return cls


def _check_accepts_image(cls: type) -> set[str]:
    params = _call_parameters(cls)
    missing = [name for name in ("image", "prompt") if name not in params]
    if missing:
        raise EditorError(f"{cls.__name__}.__call__ takes no {' or '.join(repr(m) for m in missing)} argument: "
                          f"DiffusersEditor needs an image-editing pipeline that takes image= and prompt= "
                          f"(e.g. FluxKontextPipeline, QwenImageEditPipeline, "
                          f"StableDiffusionInstructPix2PixPipeline)")
    return params


def working_size(size: tuple[int, int], preset: EditorPreset, config: DiffusersEditorConfig) -> tuple[int, int]:
    """The ``(width, height)`` the pipeline works at for an input of ``size`` = ``(width, height)``."""
    multiple = preset.multiple_of
    if config.height is not None:
        width, height = config.width, config.height
    else:
        area = config.max_area or preset.max_area
        width, height = size
        if area is not None:
            scale = math.sqrt(area / (width * height))
            width, height = width * scale, height * scale
    return max(multiple, int(width) // multiple * multiple), max(multiple, int(height) // multiple * multiple)


class DiffusersEditor:
    """A diffusers image-editing pipeline as a batched, seeded :class:`~mira_env.editors.base.Editor`.

    Args:
        model: a preset name (``"instruct-pix2pix"``, ``"flux-kontext"``, ``"qwen-image-edit"``,
            ``"qwen-image-edit-plus"``: their default hub id), a hub id, or a local pipeline folder.
        preset: the preset to call it with (default: found from ``model``; see
            :func:`~mira_env.editors.presets.resolve_preset`).
        pipeline_class: a diffusers pipeline class name, for checkpoints no preset knows.
        other keywords: the fields of :class:`DiffusersEditorConfig`.
    """

    def __init__(self, model: str, preset: str | None = None, *, pipeline_class: str | None = None,
                 torch_dtype: str = "auto", device: str | None = None, cpu_offload: bool = False,
                 num_inference_steps: int | None = None, guidance_scale: float | None = None,
                 image_guidance_scale: float | None = None, true_cfg_scale: float | None = None,
                 negative_prompt: str | None = None, height: int | None = None, width: int | None = None,
                 max_area: int | None = None, max_batch: int | None = None, resize_to_input: bool = True,
                 call_kwargs: dict | None = None, load_kwargs: dict | None = None, lazy: bool = False) -> None:
        self.config = DiffusersEditorConfig(
            torch_dtype=torch_dtype, device=device, cpu_offload=cpu_offload,
            num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
            image_guidance_scale=image_guidance_scale, true_cfg_scale=true_cfg_scale,
            negative_prompt=negative_prompt, height=height, width=width, max_area=max_area, max_batch=max_batch,
            resize_to_input=resize_to_input, call_kwargs=dict(call_kwargs or {}),
            load_kwargs=dict(load_kwargs or {}), lazy=lazy)
        self.resolved: ResolvedModel = resolve_preset(model, preset, pipeline_class)
        self.model = self.resolved.model
        self.preset: EditorPreset = self.resolved.preset
        self._call_params: set[str] | None = None
        if self.resolved.class_known:
            self._call_params = _check_accepts_image(_pipeline_class(self.preset.pipeline_class))
            self._check_overrides()
        self.pipeline: Any = None
        self.device: str | None = None
        self.info = self._make_info()
        if not self.config.lazy:
            self.load()

    # ------------------------------------------------------------------ loading
    def _check_overrides(self) -> None:
        cfg = self.config
        wanted = {"num_inference_steps": cfg.num_inference_steps, "guidance_scale": cfg.guidance_scale,
                  "image_guidance_scale": cfg.image_guidance_scale, "true_cfg_scale": cfg.true_cfg_scale,
                  "negative_prompt": cfg.negative_prompt}
        for name, value in wanted.items():
            if value is not None and name not in self._call_params:
                raise EditorError(f"{name}={value!r} was given, but {self.preset.pipeline_class}.__call__ has no "
                                  f"{name!r} argument; drop it")

    def _make_info(self) -> EditorInfo:
        limits = [n for n in (self.config.max_batch, self.preset.max_batch) if n is not None]
        resolution = (self.config.height, self.config.width) if self.config.height is not None else None
        return EditorInfo(
            name=f"diffusers/{self.preset.name}", max_batch=min(limits) if limits else _NO_BATCH_LIMIT,
            resolution=resolution, deterministic=True,
            extras={"model": self.model, "preset": self.preset.name, "pipeline_class": self.preset.pipeline_class,
                    "device": self.device, "torch_dtype": self.config.torch_dtype,
                    "num_inference_steps": self._call_defaults().get("num_inference_steps"),
                    "lazy": self.config.lazy})

    def _resolve_device(self) -> str:
        import torch

        if self.config.device is not None:
            return self.config.device
        return "cuda" if torch.cuda.is_available() else "cpu"

    def _resolve_dtype(self, device: str):
        import torch

        name = self.config.torch_dtype
        if name == "auto":
            name = self.preset.cuda_dtype if device.startswith("cuda") else "float32"
        return getattr(torch, name)

    def load(self) -> Any:
        """Load the pipeline (once) with ``from_pretrained`` and move it to the device; return it."""
        if self.pipeline is not None:
            return self.pipeline
        import diffusers

        device = self._resolve_device()
        cls = _pipeline_class(self.preset.pipeline_class) if self.resolved.class_known else diffusers.DiffusionPipeline
        try:
            pipeline = cls.from_pretrained(self.model, dtype=self._resolve_dtype(device),
                                           **self.config.load_kwargs)
        except Exception as exc:
            raise EditorError(f"could not load {self.model!r} with {cls.__name__}.from_pretrained: "
                              f"{type(exc).__name__}: {exc}") from exc
        if not self.resolved.class_known:
            self.preset = preset_for_class(type(pipeline).__name__)
            self._call_params = _check_accepts_image(type(pipeline))
            self._check_overrides()
        if self.config.cpu_offload:
            pipeline.enable_model_cpu_offload(device=device)
        else:
            pipeline.to(device)
        pipeline.set_progress_bar_config(disable=True)
        self.pipeline, self.device = pipeline, device
        self.info = self._make_info()
        return pipeline

    # ------------------------------------------------------------------ calling
    def _call_defaults(self) -> dict[str, Any]:
        """Sampling arguments of every call: preset defaults, then the options that override them."""
        cfg, preset = self.config, self.preset
        values = {
            "num_inference_steps": cfg.num_inference_steps or preset.num_inference_steps,
            "guidance_scale": cfg.guidance_scale if cfg.guidance_scale is not None else preset.guidance_scale,
            "image_guidance_scale": (cfg.image_guidance_scale if cfg.image_guidance_scale is not None
                                     else preset.image_guidance_scale),
            "true_cfg_scale": cfg.true_cfg_scale if cfg.true_cfg_scale is not None else preset.true_cfg_scale,
        }
        kwargs = {key: value for key, value in values.items() if value is not None}
        kwargs.update(preset.call_kwargs)
        return kwargs

    def generator_device(self) -> str:
        """Where the per-sample ``torch.Generator``s live: the CPU under offload, else the pipeline device."""
        return "cpu" if self.config.cpu_offload else str(self.device)

    def call_kwargs_for(self, size: tuple[int, int], prompts: list[str], seeds: Sequence[int]) -> dict[str, Any]:
        """Keyword arguments of the pipeline call for a group of inputs of working ``size`` (w, h)."""
        import torch

        params = self._call_params or set()
        kwargs = {k: v for k, v in self._call_defaults().items() if k in params}
        width, height = size
        if "height" in params and "width" in params:
            kwargs["height"], kwargs["width"] = height, width
        if self.preset.area_control == "max_area" and "max_area" in params:
            kwargs["max_area"] = width * height
            if "_auto_resize" in params and (self.config.max_area is not None or self.config.height is not None):
                kwargs["_auto_resize"] = False  # keep the condition image at the working size
        negative = self.config.negative_prompt
        if negative is None:
            negative = self.preset.negative_prompt
        if negative is not None and "negative_prompt" in params:
            kwargs["negative_prompt"] = [negative] * len(prompts)
        kwargs.update(self.config.call_kwargs)
        kwargs["prompt"] = list(prompts)
        kwargs["generator"] = [torch.Generator(device=self.generator_device()).manual_seed(int(seed))
                               for seed in seeds]
        kwargs["output_type"] = "pil"
        return kwargs

    @contextlib.contextmanager
    def _area_cap(self, area: int) -> Iterator[None]:
        """Cap the area a ``calculate_dimensions`` pipeline resizes to at ``area`` while a call runs."""
        preset = self.preset
        if preset.area_control != "calculate_dimensions" or area == preset.max_area:
            yield
            return
        import importlib

        module = importlib.import_module(type(self.pipeline).__module__)
        original = getattr(module, "calculate_dimensions", None)
        if original is None:
            raise EditorError(f"{type(self.pipeline).__name__}'s module has no calculate_dimensions to cap; "
                              f"this diffusers version resizes differently: drop max_area/height/width")

        def capped(target_area, ratio):
            return original(area if target_area == preset.max_area else min(target_area, area), ratio)

        with _PATCH_LOCK:
            module.calculate_dimensions = capped
            try:
                yield
            finally:
                module.calculate_dimensions = original

    def _run(self, images: list[Image.Image], prompts: list[str], seeds: list[int],
             size: tuple[int, int]) -> list[Image.Image]:
        kwargs = self.call_kwargs_for(size, prompts, seeds)
        inputs = [image if image.size == size else image.resize(size, Image.Resampling.BICUBIC) for image in images]
        kwargs["image"] = inputs
        with self._area_cap(size[0] * size[1]):
            output = self.pipeline(**kwargs)
        results = list(output.images)
        if len(results) != len(images):
            raise EditorError(f"{type(self.pipeline).__name__} returned {len(results)} images for {len(images)} "
                              f"prompts")
        return results

    def edit(self, images: Sequence[Image.Image], instructions: Sequence[str],
             seeds: Sequence[int]) -> list[Image.Image]:
        """Edit every image with its instruction and seed; one pipeline call per size group and max_batch."""
        check_batch(images, instructions, seeds)
        if not images:
            return []
        self.load()
        groups: dict[tuple[int, int], list[int]] = {}
        for index, image in enumerate(images):
            groups.setdefault(working_size(image.size, self.preset, self.config), []).append(index)
        outputs: list[Image.Image | None] = [None] * len(images)
        step = self.info.max_batch
        for size, indices in groups.items():
            for start in range(0, len(indices), step):
                chunk = indices[start:start + step]
                results = self._run([images[i].convert("RGB") if images[i].mode != "RGB" else images[i]
                                     for i in chunk], [instructions[i] for i in chunk],
                                    [int(seeds[i]) for i in chunk], size)
                for index, result in zip(chunk, results):
                    result = result.convert("RGB") if result.mode != "RGB" else result
                    if self.config.resize_to_input and result.size != images[index].size:
                        result = result.resize(images[index].size, Image.Resampling.BICUBIC)
                    outputs[index] = result
        return outputs  # type: ignore[return-value]

    def __repr__(self) -> str:
        return (f"DiffusersEditor(model={self.model!r}, preset={self.preset.name!r}, device={self.device!r}, "
                f"loaded={self.pipeline is not None})")


__all__ = ["DiffusersEditor", "DiffusersEditorConfig", "TORCH_DTYPES", "working_size"]
