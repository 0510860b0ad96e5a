"""No-reference image-quality terms of the MIRA paper: ARNIQA and TOPIQ, through ``pyiqa``.

``pip install 'mira-env[iqa]'``: an optional extra kept OUT of ``all``, because ``pyiqa`` pulls about
33 packages and its wheel installs top-level ``tests``, ``docs``, ``options``, ``build`` and
``ResultsCalibra`` folders into site-packages (a ``tests`` package there can shadow a project's own
tests). Install it in the environment that evaluates, not in a development one.

Terms (registry names; both score the EDITED image alone, higher = better):

- ``arniqa`` -> pyiqa ``"arniqa"`` (regressor trained on KonIQ-10k; ``[0, 1]``); other regressors with
  ``metric="arniqa-live"``, ``"arniqa-spaq"``, ...
- ``topiq`` -> pyiqa ``"topiq_nr"`` (CFANet, ResNet-50, KonIQ-10k; about ``[0, 1]``); ``"topiq_nr-flive"``, ...

Weights, offline:

- **TOPIQ** takes ``pretrained_model_path`` (the CFANet checkpoint ``cfanet_nr_koniq_res50-9a73138b.pth``).
  With it, pass ``metric_kwargs={"backbone_pretrain": False}`` so the ResNet-50 backbone is not fetched
  from the hub first (the checkpoint holds the backbone's weights too).
- **ARNIQA** downloads in its constructor: the torchvision ResNet-50 ImageNet weights
  (``$TORCH_HOME/hub/checkpoints/resnet50-0676ba61.pth``), its encoder
  (``$TORCH_HOME/hub/checkpoints/ARNIQA.pth``) and the regressor
  (``$TORCH_HOME/hub/pyiqa/regressor_koniq10k.pth``). Pre-fill such a folder on a machine with internet
  and pass it as ``torch_home`` (``TORCH_HOME`` and pyiqa's download folder point there while the
  metric is built, and are restored afterwards).

Images go to the metric at their resolution, downscaled so the longer side is at most ``max_side``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Sequence

from mira_env.reward_api import RewardInput

from mira_env.validate import check_int

from mira_env.rewards.base import RewardTerm
from mira_env.rewards.devices import ModelCache, resolve_device, torch_home as weights_in
from mira_env.rewards.errors import RewardConfigError, describe, missing_extra
from mira_env.rewards.images import rgb

#: registry term -> default pyiqa metric
IQA_TERMS = {"arniqa": "arniqa", "topiq": "topiq_nr"}
_MODELS = ModelCache()


def import_pyiqa():
    """``import pyiqa``; a clear error when the ``iqa`` extra is missing."""
    try:
        import pyiqa
    except ImportError:
        raise missing_extra("pyiqa", "iqa", "the ARNIQA / TOPIQ image-quality terms") from None
    return pyiqa


@contextlib.contextmanager
def weights_home(torch_home: str | None):
    """While building a metric: ``TORCH_HOME`` and pyiqa's download folder point into ``torch_home``
    (``hub/checkpoints`` and ``hub/pyiqa``); both are restored afterwards."""
    if torch_home is None:
        yield
        return
    from pyiqa.utils import download_util

    saved_dir = download_util.DEFAULT_CACHE_DIR
    home = str(Path(torch_home).resolve())
    download_util.DEFAULT_CACHE_DIR = os.path.join(home, "hub", "pyiqa")
    try:
        with weights_in(home):
            yield
    finally:
        download_util.DEFAULT_CACHE_DIR = saved_dir


class PyiqaQuality(RewardTerm):
    """A pyiqa no-reference metric of the edited image (see the module docstring)."""

    value_range = (0.0, 1.0)
    higher_is_better = True

    def __init__(self, metric: str = "arniqa", name: str | None = None, device: str = "auto",
                 pretrained_model_path: str | None = None, torch_home: str | None = None,
                 max_side: int | None = 1024, metric_kwargs: dict | None = None) -> None:
        if not isinstance(metric, str) or not metric:
            raise RewardConfigError(f"metric={describe(metric)} must be a pyiqa metric name such as 'arniqa'")
        if pretrained_model_path is not None and not Path(pretrained_model_path).is_file():
            raise RewardConfigError(f"pretrained_model_path={pretrained_model_path!r} is not a file")
        check_int("max_side", max_side, minimum=8, allow_none=True, error=RewardConfigError)
        self.metric = metric
        self.name = name or metric
        self.device = device
        self.pretrained_model_path = pretrained_model_path
        self.torch_home = torch_home
        self.max_side = max_side
        self.metric_kwargs = dict(metric_kwargs or {})

    def model(self):
        """The pyiqa metric, built once per (metric, device, weights) and shared."""
        pyiqa = import_pyiqa()
        import torch

        device = resolve_device(self.device)
        kwargs = dict(self.metric_kwargs)
        if self.pretrained_model_path is not None:
            kwargs["pretrained_model_path"] = self.pretrained_model_path
        key = (self.metric, device, self.torch_home, repr(sorted(kwargs.items())))

        def build() -> Any:
            if self.metric not in pyiqa.list_models():
                raise RewardConfigError(f"metric={self.metric!r} is not a pyiqa metric; see pyiqa.list_models()")
            with weights_home(self.torch_home):
                return pyiqa.create_metric(self.metric, as_loss=False, device=torch.device(device), **kwargs)

        return _MODELS.get(key, build)

    def _score(self, items: Sequence[RewardInput]) -> list[float]:
        import numpy as np
        import torch

        metric = self.model()
        out = []
        for item in items:
            image = rgb(item.edited)
            if self.max_side is not None and max(image.size) > self.max_side:
                scale = self.max_side / max(image.size)
                image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
            tensor = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
            with torch.no_grad():
                value = metric(tensor)
            out.append(float(value.reshape(-1)[0]))
        return out
