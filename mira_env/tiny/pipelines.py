"""Tiny, randomly initialised diffusers editing pipelines, built offline and saved to a folder.

Each builder follows the ``get_dummy_components()`` of diffusers' own fast tests for that pipeline
(``tests/pipelines/stable_diffusion/test_stable_diffusion_instruction_pix2pix.py``,
``tests/pipelines/flux/test_pipeline_flux_kontext.py``, ``tests/pipelines/qwenimage/test_qwenimage_edit.py``
and ``test_qwenimage_edit_plus.py``), except that every tokenizer and processor is built locally
instead of downloaded from ``hf-internal-testing``:

- CLIP: a byte-level BPE vocabulary (every byte, with and without ``</w>``) and no merges;
- T5: a Unigram vocabulary of single printable characters (with and without the ``▁`` prefix);
- Qwen2: a byte-level vocabulary plus the Qwen special tokens; the Qwen2-VL processor from a local
  ``Qwen2VLImageProcessor`` and ``Qwen2VLVideoProcessor``.

The pipeline is saved with ``save_pretrained`` and loaded back by
:class:`~mira_env.editors.diffusers_editor.DiffusersEditor` through ``from_pretrained``, the path real
checkpoints take. Random weights: the outputs are noise-like images, for plumbing tests only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from mira_env.errors import choice_error
from mira_env.validate import check_int

#: Qwen special tokens (text and vision) in the order Qwen2.5 numbers them.
QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
)


def _byte_alphabet() -> list[str]:
    """The 256 printable stand-ins of GPT-2 style byte-level BPE, in byte order."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    table = bytes_to_unicode()
    return [table[b] for b in range(256)]


def clip_tokenizer():
    """A CLIP tokenizer over a byte-level vocabulary with no merges (514 ids)."""
    from transformers import CLIPTokenizer

    alphabet = _byte_alphabet()
    vocab = {ch: i for i, ch in enumerate(alphabet)}
    vocab.update({ch + "</w>": 256 + i for i, ch in enumerate(alphabet)})
    vocab["<|startoftext|>"] = 512
    vocab["<|endoftext|>"] = 513
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def t5_tokenizer():
    """A T5 tokenizer over single printable characters (Unigram), no sentencepiece model needed."""
    import string

    from transformers import T5Tokenizer

    pieces: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    chars = [ch for ch in string.printable if not ch.isspace()]
    pieces += [(ch, -3.0) for ch in chars] + [("\u2581" + ch, -2.5) for ch in chars]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=512)


def qwen2_tokenizer():
    """A Qwen2 tokenizer: 256 byte-level ids, then the Qwen special tokens (ids 256..269)."""
    from transformers import Qwen2Tokenizer

    vocab = {ch: i for i, ch in enumerate(_byte_alphabet())}
    for offset, token in enumerate(QWEN_SPECIAL_TOKENS):
        vocab[token] = 256 + offset
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[], model_max_length=32768, errors="replace")
    tokenizer.add_special_tokens({"additional_special_tokens": list(QWEN_SPECIAL_TOKENS[1:])})
    return tokenizer


def qwen2_vl_processor(tokenizer):
    """A ``Qwen2VLProcessor`` from local image and video processors (patch 14, merge 2)."""
    from transformers import Qwen2VLImageProcessor, Qwen2VLProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    image_processor = Qwen2VLImageProcessor(patch_size=14, merge_size=2, temporal_patch_size=2,
                                            min_pixels=56 * 56, max_pixels=128 * 128)
    video_processor = Qwen2VLVideoProcessor(patch_size=14, merge_size=2, temporal_patch_size=2)
    return Qwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer, video_processor=video_processor)


def _tiny_clip_text_encoder():
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(bos_token_id=512, eos_token_id=513, pad_token_id=513, hidden_size=32,
                            intermediate_size=37, layer_norm_eps=1e-05, num_attention_heads=4,
                            num_hidden_layers=2, vocab_size=514, hidden_act="gelu", projection_dim=32,
                            max_position_embeddings=77)
    return CLIPTextModel(config)


def _instruct_pix2pix_components(seed: int) -> dict[str, Any]:
    import torch
    from diffusers import AutoencoderKL, EulerAncestralDiscreteScheduler, UNet2DConditionModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=8, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
    )
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        block_out_channels=[32, 64], in_channels=3, out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"], latent_channels=4,
    )
    torch.manual_seed(seed)
    text_encoder = _tiny_clip_text_encoder()
    scheduler = EulerAncestralDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                                steps_offset=1)
    return {"unet": unet, "scheduler": scheduler, "vae": vae, "text_encoder": text_encoder,
            "tokenizer": clip_tokenizer(), "safety_checker": None, "feature_extractor": None,
            "image_encoder": None, "requires_safety_checker": False}


def _flux_kontext_components(seed: int) -> dict[str, Any]:
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=4, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=[4, 4, 8],
    )
    torch.manual_seed(seed)
    text_encoder = _tiny_clip_text_encoder()
    torch.manual_seed(seed)
    t5_config = T5Config(vocab_size=256, d_model=32, d_ff=37, d_kv=8, num_heads=4, num_layers=2,
                         relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1,
                         decoder_start_token_id=0)
    text_encoder_2 = T5EncoderModel(t5_config)
    torch.manual_seed(seed)
    # Two VAE blocks (diffusers' test uses one): a 2x downsample keeps a 64x64 edit at 32x32 latents.
    vae = AutoencoderKL(
        sample_size=32, in_channels=3, out_channels=3, block_out_channels=(4, 4), layers_per_block=1,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=1, norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False,
        shift_factor=0.0609, scaling_factor=1.5035,
    )
    return {"scheduler": FlowMatchEulerDiscreteScheduler(), "text_encoder": text_encoder,
            "text_encoder_2": text_encoder_2, "tokenizer": clip_tokenizer(), "tokenizer_2": t5_tokenizer(),
            "transformer": transformer, "vae": vae, "image_encoder": None, "feature_extractor": None}


def _qwen_image_edit_components(seed: int) -> dict[str, Any]:
    import torch
    from diffusers import AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, QwenImageTransformer2DModel
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    tokenizer = qwen2_tokenizer()
    token_id = tokenizer.convert_tokens_to_ids
    torch.manual_seed(seed)
    transformer = QwenImageTransformer2DModel(
        patch_size=2, in_channels=16, out_channels=4, num_layers=2, attention_head_dim=16, num_attention_heads=3,
        joint_attention_dim=16, guidance_embeds=False, axes_dims_rope=(8, 4, 4),
    )
    torch.manual_seed(seed)
    z_dim = 4
    vae = AutoencoderKLQwenImage(
        base_dim=z_dim * 6, z_dim=z_dim, dim_mult=[1, 2, 4], num_res_blocks=1, temperal_downsample=[False, True],
        latents_mean=[0.0] * z_dim, latents_std=[1.0] * z_dim,
    )
    torch.manual_seed(seed)
    config = Qwen2_5_VLConfig(
        text_config={
            "hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
            "num_key_value_heads": 2, "vocab_size": 256 + len(QWEN_SPECIAL_TOKENS),
            "bos_token_id": token_id("<|endoftext|>"), "eos_token_id": token_id("<|im_end|>"),
            "pad_token_id": token_id("<|endoftext|>"),
            "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
            "rope_theta": 1000000.0,
        },
        vision_config={"depth": 2, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2,
                       "out_hidden_size": 16},
        hidden_size=16, vocab_size=256 + len(QWEN_SPECIAL_TOKENS),
        image_token_id=token_id("<|image_pad|>"), video_token_id=token_id("<|video_pad|>"),
        vision_start_token_id=token_id("<|vision_start|>"), vision_end_token_id=token_id("<|vision_end|>"),
        vision_token_id=token_id("<|vision_pad|>"),
    )
    text_encoder = Qwen2_5_VLForConditionalGeneration(config)
    return {"transformer": transformer, "vae": vae, "scheduler": FlowMatchEulerDiscreteScheduler(),
            "text_encoder": text_encoder, "tokenizer": tokenizer, "processor": qwen2_vl_processor(tokenizer)}


#: preset name -> (diffusers pipeline class name, components builder)
_BUILDERS: dict[str, tuple[str, Callable[[int], dict[str, Any]]]] = {
    "instruct-pix2pix": ("StableDiffusionInstructPix2PixPipeline", _instruct_pix2pix_components),
    "flux-kontext": ("FluxKontextPipeline", _flux_kontext_components),
    "qwen-image-edit": ("QwenImageEditPipeline", _qwen_image_edit_components),
    "qwen-image-edit-plus": ("QwenImageEditPlusPipeline", _qwen_image_edit_components),
}

#: The presets that have a tiny offline build.
TINY_PRESETS: tuple[str, ...] = tuple(_BUILDERS)


def build_tiny_pipeline(preset: str, path: str | Path, seed: int = 0) -> Path:
    """Build a tiny random pipeline of ``preset``'s class, save it to ``path`` and return ``path``.

    Every component is initialised right after ``torch.manual_seed(seed)`` (as diffusers' tests do
    with seed 0), so two builds with the same seed hold identical weights. The global torch RNG
    state of the caller is restored afterwards.
    """
    if preset not in _BUILDERS:
        raise choice_error("preset", preset, TINY_PRESETS)
    check_int("seed", seed, minimum=None)
    import diffusers
    import torch

    class_name, builder = _BUILDERS[preset]
    target = Path(path)
    with torch.random.fork_rng(devices=[]):  # leave the caller's global RNG untouched
        components = builder(seed)
    pipeline = getattr(diffusers, class_name)(**components)
    target.mkdir(parents=True, exist_ok=True)
    pipeline.save_pretrained(str(target), safe_serialization=True)
    return target


__all__ = ["QWEN_SPECIAL_TOKENS", "TINY_PRESETS", "build_tiny_pipeline", "clip_tokenizer", "qwen2_tokenizer",
           "qwen2_vl_processor", "t5_tokenizer"]
