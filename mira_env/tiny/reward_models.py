"""Tiny offline reward models: an open_clip CLIP and an LPIPS backbone, random under a fixed seed.

- :func:`build_tiny_clip` writes an open_clip model config (``mira-tiny-clip``: a 2-layer ViT and a
  2-layer text transformer with the REAL CLIP BPE tokenizer that ships inside open_clip) and a
  random checkpoint to a folder, registers the config with ``open_clip.add_model_config`` and returns
  ``(model_name, checkpoint_path)``. Load it the way a real one loads::

      open_clip.create_model_and_transforms(model_name, pretrained=checkpoint_path)

- :func:`build_tiny_lpips_home` writes a random torchvision SqueezeNet 1.1 checkpoint under
  ``<folder>/hub/checkpoints/`` with the file name torchvision's pretrained-weights loader looks for,
  so ``lpips.LPIPS(net="squeeze")`` with ``TORCH_HOME=<folder>`` (``LpipsDistance(torch_home=folder)``)
  takes the PRETRAINED code path offline. LPIPS' linear layers are the real ones from the package.

Random weights: plumbing and throughput only, never quality. Nothing here downloads anything, and
torch / open_clip are imported only when a builder is called.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from mira_env.errors import ConfigError, describe
from mira_env.validate import check_int

TINY_CLIP_NAME = "mira-tiny-clip"
TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
_BUILD_VERSION = 1


def default_root() -> Path:
    """``$MIRA_TINY_CACHE`` or ``<tmp>/mira_tiny``: where builds go when no folder is given."""
    return Path(os.environ.get("MIRA_TINY_CACHE", Path(tempfile.gettempdir()) / "mira_tiny"))


def register_tiny_clip(folder: str | Path) -> str:
    """Register the tiny config saved in ``folder`` with open_clip (per process); returns the model name."""
    import open_clip

    config = Path(folder) / f"{TINY_CLIP_NAME}.json"
    if not config.is_file():
        raise ConfigError(f"{config} does not exist; build it with build_tiny_clip({str(folder)!r})")
    if TINY_CLIP_NAME not in open_clip.list_models():
        open_clip.add_model_config(config)
    return TINY_CLIP_NAME


def build_tiny_clip(folder: str | Path | None = None, seed: int = 0) -> tuple[str, str]:
    """Build (or reuse) the tiny CLIP in ``folder``; returns ``(model_name, checkpoint_path)``."""
    check_int("seed", seed, minimum=None)
    folder = Path(folder) if folder is not None else default_root() / f"clip-seed{seed}-v{_BUILD_VERSION}"
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / f"{TINY_CLIP_NAME}.json"
    checkpoint = folder / "open_clip_model.pt"
    marker = folder / "mira_tiny_clip.json"
    expected = {"seed": seed, "version": _BUILD_VERSION}
    if not (marker.is_file() and checkpoint.is_file() and json.loads(marker.read_text()) == expected):
        import open_clip
        import torch

        config_path.write_text(json.dumps(TINY_CLIP_CONFIG, indent=2))
        register_tiny_clip(folder)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = open_clip.create_model(TINY_CLIP_NAME, pretrained=None)
        torch.save(model.state_dict(), checkpoint)
        marker.write_text(json.dumps(expected))
    register_tiny_clip(folder)
    return TINY_CLIP_NAME, str(checkpoint)


def build_tiny_lpips_home(folder: str | Path | None = None, net: str = "squeeze", seed: int = 0) -> Path:
    """A ``TORCH_HOME`` folder holding a random ``net`` backbone checkpoint where torchvision expects it.

    Only ``"squeeze"`` (SqueezeNet 1.1, 5 MB): AlexNet and VGG checkpoints include their classifiers
    (hundreds of MB); for those use ``LpipsDistance(net=..., random_backbone=True)`` in offline tests.
    """
    if net != "squeeze":
        raise ConfigError(f"net={describe(net)}: the tiny LPIPS home is built for 'squeeze' only; for 'alex' or "
                          "'vgg' offline use LpipsDistance(net=..., random_backbone=True)")
    folder = Path(folder) if folder is not None else default_root() / f"lpips-home-seed{seed}-v{_BUILD_VERSION}"
    import torch
    from torchvision.models import SqueezeNet1_1_Weights, squeezenet1_1

    target = folder / "hub" / "checkpoints" / os.path.basename(SqueezeNet1_1_Weights.IMAGENET1K_V1.url)
    marker = folder / "mira_tiny_lpips.json"
    expected = {"net": net, "seed": seed, "version": _BUILD_VERSION}
    if target.is_file() and marker.is_file() and json.loads(marker.read_text()) == expected:
        return folder
    target.parent.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = squeezenet1_1()
    torch.save(model.state_dict(), target)
    marker.write_text(json.dumps(expected))
    return folder
