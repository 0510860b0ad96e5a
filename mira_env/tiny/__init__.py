"""Tiny, randomly initialised models for offline tests and demos.

Each is built from a config under a fixed seed, saved to a local folder and loaded back through the
SAME ``from_pretrained`` path real models take (so the code users run on GPUs is the code tested).
Nothing here downloads anything. Submodules, each importing torch only when called:

- ``mira_env.tiny.pipelines``: diffusers editing pipelines (InstructPix2Pix, FluxKontext,
  QwenImageEdit, QwenImageEditPlus).
- ``mira_env.tiny.vlm``: image-text-to-text VLMs (Qwen2.5-VL, Qwen3-VL) with local tokenizers.
- ``mira_env.tiny.reward_models``: open_clip CLIP and LPIPS builds.
"""
