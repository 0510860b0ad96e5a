"""LPIPS perceptual distance between the edited and the source image (a preservation term).

Direction: a DISTANCE, 0 for identical images, higher = more perceptually different (about
``[0, 1]`` in practice; ``value_range`` is declared as ``(0, 1)`` for normalisation). Reward
preservation with a NEGATIVE weight.

Backbones: ``net`` = ``"alex"`` (the LPIPS default), ``"vgg"`` or ``"squeeze"``. The learned linear
layers ship with the ``lpips`` package; the backbone is torchvision's ImageNet model, which torchvision
loads from ``$TORCH_HOME/hub/checkpoints`` (downloading it when absent). ``torch_home`` points that
lookup at another folder (an offline cluster with pre-fetched weights; the tiny test build).
``random_backbone=True`` (lpips' ``pnet_rand``) builds a RANDOM backbone: for offline plumbing
tests only, chosen explicitly, never a fallback: a missing backbone is an error.

Images go to the model at the source resolution (the edited image is resized to it when the
editor changed it), optionally downscaled so the longer side is at most ``max_side`` pixels.
"""

from __future__ import annotations

from typing import Any, Sequence

from mira_env.reward_api import RewardInput
from mira_env.validate import check_choice, check_int

from mira_env.rewards.base import RewardTerm, Scores
from mira_env.rewards.devices import ModelCache, resolve_device, torch_home as weights_in
from mira_env.rewards.errors import RewardConfigError, missing_extra
from mira_env.rewards.images import match_size, rgb

NETS = ("alex", "vgg", "squeeze")
_MODELS = ModelCache()


def load_lpips(net: str = "alex", device: str | None = "auto", random_backbone: bool = False,
               torch_home: str | None = None) -> Any:
    """The shared ``lpips.LPIPS`` model for ``(net, device, random_backbone, torch_home)``, in eval mode."""
    check_choice("lpips net", net, NETS, error=RewardConfigError)
    try:
        import lpips
    except ImportError:
        raise missing_extra("lpips", "rewards", "the LPIPS reward term") from None
    device = resolve_device(device)
    key = (net, device, bool(random_backbone), None if torch_home is None else str(torch_home))

    def build() -> Any:
        import warnings

        with weights_in(torch_home), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*(pretrained|weights).*", category=UserWarning)
            try:
                model = lpips.LPIPS(net=net, pnet_rand=bool(random_backbone), verbose=False)
            except Exception as exc:
                raise RewardConfigError(
                    f"could not load the pretrained {net!r} LPIPS backbone ({type(exc).__name__}: {exc}); "
                    "it comes from torchvision's hub cache ($TORCH_HOME/hub/checkpoints): fetch it once "
                    "online or pass torch_home= a folder holding it. random_backbone=True is for offline "
                    "plumbing tests only") from exc
        return model.eval().to(device)

    return _MODELS.get(key, build)


#: the smallest image side LPIPS scores (its backbones pool a 1x1 input away and fail)
MIN_SIDE = 16


class LpipsDistance(RewardTerm):
    """LPIPS distance of the edited image to the source (see the module docstring)."""

    name = "lpips"
    value_range = (0.0, 1.0)
    higher_is_better = False

    def __init__(self, net: str = "alex", device: str | None = "auto", random_backbone: bool = False,
                 torch_home: str | None = None, batch_size: int = 16, max_side: int | None = 512,
                 name: str | None = None) -> None:
        check_choice("lpips net", net, NETS, error=RewardConfigError)
        check_int("lpips batch_size", batch_size, error=RewardConfigError)
        self.net, self.device, self.random_backbone, self.torch_home = net, device, random_backbone, torch_home
        self.batch_size, self.max_side = batch_size, max_side
        if name is not None:
            self.name = name
        self._model = None

    @property
    def model(self):
        if self._model is None:
            self._model = load_lpips(self.net, self.device, self.random_backbone, self.torch_home)
        return self._model

    def _pair(self, item: RewardInput):
        import numpy as np

        source = rgb(item.source)
        edited = match_size(rgb(item.edited), source)
        if self.max_side and max(source.size) > self.max_side:
            scale = self.max_side / max(source.size)
            size = (max(1, round(source.width * scale)), max(1, round(source.height * scale)))
            source, edited = source.resize(size), edited.resize(size)
        to = lambda im: np.asarray(im, dtype=np.float32).transpose(2, 0, 1) / 127.5 - 1.0  # noqa: E731
        return to(source), to(edited)

    def _score(self, items: Sequence[RewardInput]) -> Scores:
        """Distances per item; an item LPIPS cannot score (smaller than :data:`MIN_SIDE` pixels, or a chunk
        whose model call failed) gets None with the reason, and the other items keep their scores."""
        import numpy as np
        import torch

        model = self.model
        device = next(model.parameters()).device
        values: list[float | None] = [None] * len(items)
        reasons: list[str | None] = [None] * len(items)
        pairs: list[tuple | None] = []
        for index, item in enumerate(items):
            size = rgb(item.source).size
            if min(size) < MIN_SIDE:
                reasons[index] = (f"source image is {size[0]}x{size[1]}: LPIPS needs at least {MIN_SIDE}x{MIN_SIDE} "
                                  f"pixels")
                pairs.append(None)
            else:
                pairs.append(self._pair(item))
        # batch items of equal size together (LPIPS needs equally shaped tensors in one call)
        groups: dict[tuple, list[int]] = {}
        for index, pair in enumerate(pairs):
            if pair is not None:
                groups.setdefault(pair[0].shape, []).append(index)
        with torch.no_grad():
            for indices in groups.values():
                for start in range(0, len(indices), self.batch_size):
                    chunk = indices[start:start + self.batch_size]
                    try:
                        src = torch.from_numpy(np.stack([pairs[i][0] for i in chunk])).to(device)
                        edt = torch.from_numpy(np.stack([pairs[i][1] for i in chunk])).to(device)
                        scores = model(src, edt).flatten().float().cpu().tolist()
                    except Exception as exc:  # noqa: BLE001 - this chunk only; recorded per item
                        from mira_env.redact import error_text

                        for i in chunk:
                            reasons[i] = f"LPIPS failed: {error_text(exc)}"
                        continue
                    for i, value in zip(chunk, scores):
                        values[i] = max(0.0, value)
        return Scores(values, reasons)

    def __repr__(self) -> str:
        return f"LpipsDistance(name={self.name!r}, net={self.net!r}, random_backbone={self.random_backbone})"
