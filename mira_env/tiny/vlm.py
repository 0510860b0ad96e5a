"""Tiny, randomly initialised replicas of the Qwen2.5-VL and Qwen3-VL policy families for offline tests.

:func:`build_tiny_vlm` builds the model from a config under a fixed seed, with a local byte-level
``Qwen2Tokenizer`` (256 byte tokens, no merges, plus the Qwen special tokens), and otherwise what the
released checkpoints ship:

- the family's REAL chat template: Qwen2.5-VL's own template (no tools, no tool turns) and Qwen3-VL's,
  read from TRL's on-disk copies (``trl/chat_templates/qwen2_5_vl.jinja`` / ``qwen3_vl.jinja``);
- the real image processor settings (:data:`IMAGE_SETTINGS`: patch size, merge size, min / max pixels,
  mean / std as in the model cards' ``preprocessor_config.json``), so a 64x64 image becomes 4 image tokens
  on Qwen2.5-VL (min_pixels 56x56) and 64 on Qwen3-VL (min_pixels 256x256), as on the real models;
- the family's video processor (the processor classes require one).

Model and processor are saved with ``save_pretrained`` and load back with::

    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path)

the same code path a real hub id takes, including the chat-template replacement of
:func:`mira_env.agents.families.prepare_processor`. Nothing is downloaded. The output is random text: use it
for plumbing (shapes, batching, generation, training steps), never for quality.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from mira_env.errors import ConfigError, describe
from mira_env.validate import check_int

KINDS = ("qwen2_5_vl", "qwen3_vl")

#: The Qwen special tokens, in the order the real tokenizers number them after the text vocabulary.
SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
)
#: Added (non-special) tokens of the Qwen tokenizers: tool calls and reasoning markers.
ADDED_TOKENS = ("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>")
#: Tokens a random tiny VLM would otherwise sample and that break generation or decoding.
VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")

_MARKER = "mira_tiny_vlm.json"
_BUILD_VERSION = 2

#: Image processor settings of the released checkpoints (preprocessor_config.json of
#: Qwen/Qwen2.5-VL-*-Instruct and Qwen/Qwen3-VL-*-Instruct); mira_env.agents.families holds the same values.
IMAGE_SETTINGS = {
    "qwen2_5_vl": {"patch_size": 14, "merge_size": 2, "temporal_patch_size": 2, "min_pixels": 3136,
                   "max_pixels": 12845056, "image_mean": (0.48145466, 0.4578275, 0.40821073),
                   "image_std": (0.26862954, 0.26130258, 0.27577711)},
    "qwen3_vl": {"patch_size": 16, "merge_size": 2, "temporal_patch_size": 2, "min_pixels": 65536,
                 "max_pixels": 16777216, "image_mean": (0.5, 0.5, 0.5), "image_std": (0.5, 0.5, 0.5)},
}
#: TRL's on-disk copies of the chat templates the released checkpoints ship.
UPSTREAM_TEMPLATES = {"qwen2_5_vl": "qwen2_5_vl.jinja", "qwen3_vl": "qwen3_vl.jinja"}


def default_path(kind: str = "qwen2_5_vl", seed: int = 0) -> Path:
    """The default cache folder of a build: ``$MIRA_TINY_CACHE`` or the system temp dir."""
    root = Path(os.environ.get("MIRA_TINY_CACHE", Path(tempfile.gettempdir()) / "mira_tiny"))
    return root / f"{kind}-seed{seed}-v{_BUILD_VERSION}"


def chat_template(kind: str = "qwen3_vl") -> str:
    """The chat template the released ``kind`` checkpoints ship, read from TRL's copy on disk."""
    if kind not in UPSTREAM_TEMPLATES:
        raise ConfigError(f"kind={describe(kind)} is not a tiny VLM kind; choose one of {list(KINDS)}")
    name = UPSTREAM_TEMPLATES[kind]
    spec = importlib.util.find_spec("trl")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"the real {kind} chat template is read from TRL's chat_templates/{name}; "
                          "install trl (pip install 'mira-env[train]')")
    for location in spec.submodule_search_locations:
        path = Path(location) / "chat_templates" / name
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise ConfigError(f"trl is installed but has no chat_templates/{name}; upgrade trl (>=1.16)")


def _byte_vocab() -> dict[str, int]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return {char: index for index, char in enumerate(bytes_to_unicode().values())}


def _build_tokenizer():
    from tokenizers import AddedToken
    from transformers import Qwen2Tokenizer

    vocab = _byte_vocab()
    for token in SPECIAL_TOKENS + ADDED_TOKENS:
        vocab[token] = len(vocab)
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[], eos_token="<|im_end|>", pad_token="<|endoftext|>",
                               unk_token=None, errors="replace")
    tokenizer.add_special_tokens({"additional_special_tokens": list(SPECIAL_TOKENS)})
    tokenizer.add_tokens([AddedToken(token, special=False, normalized=False) for token in ADDED_TOKENS])
    tokenizer.model_max_length = 32768
    return tokenizer


def _is_complete(path: Path, kind: str, seed: int) -> bool:
    marker = path / _MARKER
    if not marker.is_file():
        return False
    try:
        meta = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    needed = ("config.json", "model.safetensors", "processor_config.json", "tokenizer.json")
    return (meta == {"kind": kind, "seed": seed, "version": _BUILD_VERSION}
            and all((path / name).is_file() for name in needed))


def _config(kind: str, token_ids: dict[str, int], vocab_size: int):
    ids = dict(image_token_id=token_ids["<|image_pad|>"], video_token_id=token_ids["<|video_pad|>"],
               vision_start_token_id=token_ids["<|vision_start|>"],
               vision_end_token_id=token_ids["<|vision_end|>"])
    # head_dim = hidden_size / num_attention_heads = 16; mrope_section sums to head_dim / 2 = 8.
    text = dict(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=8192,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
                pad_token_id=token_ids["<|endoftext|>"], eos_token_id=token_ids["<|im_end|>"],
                bos_token_id=token_ids["<|endoftext|>"])
    if kind == "qwen2_5_vl":
        from transformers import Qwen2_5_VLConfig

        vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=14,
                      spatial_merge_size=2, temporal_patch_size=2, window_size=56, out_hidden_size=32,
                      fullatt_block_indexes=[1])
        return Qwen2_5_VLConfig(text_config=text, vision_config=vision, **ids)
    from transformers import Qwen3VLConfig

    text["head_dim"] = 16
    text["rope_parameters"]["mrope_interleaved"] = True
    vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=16,
                  spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=32, num_position_embeddings=64,
                  deepstack_visual_indexes=[1])
    return Qwen3VLConfig(text_config=text, vision_config=vision, **ids)


def _processor(kind: str, tokenizer, template: str):
    from transformers import Qwen2VLImageProcessor

    settings = IMAGE_SETTINGS[kind]
    common = dict(patch_size=settings["patch_size"], merge_size=settings["merge_size"],
                  temporal_patch_size=settings["temporal_patch_size"])
    size = {"shortest_edge": settings["min_pixels"], "longest_edge": settings["max_pixels"]}
    image_processor = Qwen2VLImageProcessor(size=size, image_mean=list(settings["image_mean"]),
                                            image_std=list(settings["image_std"]), **common)
    if kind == "qwen2_5_vl":
        from transformers import Qwen2_5_VLProcessor, Qwen2VLVideoProcessor

        video = Qwen2VLVideoProcessor(**common)
        return Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tokenizer, video_processor=video,
                                   chat_template=template)
    from transformers import Qwen3VLProcessor, Qwen3VLVideoProcessor

    video = Qwen3VLVideoProcessor(**common)
    return Qwen3VLProcessor(image_processor=image_processor, tokenizer=tokenizer, video_processor=video,
                            chat_template=template)


def build_tiny_vlm(kind: str = "qwen2_5_vl", path: str | Path | None = None, seed: int = 0) -> Path:
    """Build (or reuse) a tiny random VLM of ``kind`` and return the folder it is saved in.

    Args:
        kind: ``"qwen2_5_vl"`` (Qwen2_5_VLForConditionalGeneration) or ``"qwen3_vl"``
            (Qwen3VLForConditionalGeneration).
        path: the output folder; default :func:`default_path` (``$MIRA_TINY_CACHE`` or the temp dir).
            A folder that already holds a complete build of the same kind and seed is reused as is.
        seed: the ``torch.manual_seed`` of the random weights.
    """
    if kind not in KINDS:
        raise ConfigError(f"kind={describe(kind)} is not a tiny VLM kind; choose one of {list(KINDS)}")
    check_int("seed", seed, minimum=None)
    path = Path(path) if path is not None else default_path(kind, seed)
    if _is_complete(path, kind, seed):
        return path
    import torch
    from transformers import AutoModelForImageTextToText

    tokenizer = _build_tokenizer()
    token_ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    config = _config(kind, token_ids, vocab_size=len(tokenizer))
    processor = _processor(kind, tokenizer, chat_template(kind))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForImageTextToText.from_config(config)
    model.generation_config.eos_token_id = [token_ids["<|im_end|>"], token_ids["<|endoftext|>"]]
    model.generation_config.pad_token_id = token_ids["<|endoftext|>"]
    model.generation_config.bos_token_id = token_ids["<|endoftext|>"]
    if path.exists() and any(path.iterdir()):
        # an existing folder (a stale or partial build, or the caller's own folder): save into it
        _save(model, processor, path, kind, seed)
        return path
    # a new folder: build beside it and rename, so concurrent builders never see a partial build
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        _save(model, processor, staging, kind, seed)
        try:
            if path.exists():
                path.rmdir()  # empty (checked above); a concurrent builder may have won meanwhile
            staging.rename(path)
        except OSError:
            if not _is_complete(path, kind, seed):
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return path


def _save(model, processor, folder: Path, kind: str, seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / _MARKER).unlink(missing_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    (folder / _MARKER).write_text(json.dumps({"kind": kind, "seed": seed, "version": _BUILD_VERSION}))


def suppress_token_ids(processor) -> list[int]:
    """Ids of the vision / image / video placeholder tokens of ``processor``'s tokenizer.

    A randomly initialised VLM samples them like any other token, and a generated ``<|image_pad|>``
    breaks the next forward pass (image features do not match image tokens). Pass the list as
    ``suppress_tokens=`` (``generate``) or ``[[i] for i in ids]`` as ``bad_words_ids``. Tokens the
    tokenizer lacks are skipped.
    """
    tokenizer = getattr(processor, "tokenizer", processor)
    vocab = tokenizer.get_vocab()
    return [int(vocab[token]) for token in VISION_TOKENS if token in vocab]


__all__ = ["IMAGE_SETTINGS", "KINDS", "UPSTREAM_TEMPLATES", "build_tiny_vlm", "chat_template", "default_path", "suppress_token_ids"]
