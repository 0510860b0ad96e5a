"""CLIP terms on open_clip: CLIP-T, directional CLIP and CLIP-I.

All three share ONE model per ``(model_name, pretrained, device, precision)`` through :func:`load_clip`
(a process-wide cache), encode in batches under ``torch.no_grad()``, and encode each distinct image
or text of a batch once (a GRPO group repeats its source image G times).

- ``clip_t``: ``cos(E_img(edited), E_txt(t))`` with ``t = task.metadata["target_caption"]`` when the
  task has one, else the instruction C. Range ``[-1, 1]``, higher = edited image matches the text.
- ``clip_dir`` (directional CLIP, as in StyleGAN-NADA / InstructPix2Pix):
  ``cos(E_img(edited) - E_img(source), E_txt(t_target) - E_txt(t_source))`` where the text pair is
  ``t_source = task.metadata["source_caption"]`` (default ``neutral_text``, "a photo") and
  ``t_target = task.metadata["target_caption"]`` (default ``neutral_text + ", " + C``, i.e. "a photo,
  <instruction>"). Range ``[-1, 1]``. An edited image identical to the source has no image
  direction: its value is defined as 0 (no movement along the text direction).
- ``clip_i``: ``cos(E_img(edited), E_img(source))``. Range ``[-1, 1]``; 1 for identical images
  (maximal: a preservation term, higher = closer to the source).

``model_name`` / ``pretrained`` are open_clip's (``"ViT-B-32"``, ``"openai"``; ``"hf-hub:..."``; a
local checkpoint file as ``pretrained``). Weights are never fetched silently in tests: the tiny
offline model comes from :func:`mira_env.tiny.reward_models.build_tiny_clip`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from mira_env.reward_api import RewardInput
from mira_env.validate import check_choice

from mira_env.rewards.base import RewardTerm, Scores
from mira_env.rewards.devices import ModelCache, resolve_device
from mira_env.rewards.errors import RewardConfigError, describe, missing_extra
from mira_env.rewards.images import image_hash, rgb

PRECISIONS = ("fp32", "fp16", "bf16")
_MODELS = ModelCache()


@dataclass
class ClipModel:
    """An open_clip model, its image transform and tokenizer; batched, no-grad encoders."""

    model: Any
    preprocess: Any
    tokenizer: Any
    device: str
    key: tuple
    batch_size: int = 32

    def encode_images(self, images: Sequence) -> "Any":
        """L2-normalised image embeddings, ``(len(images), dim)`` float32 on CPU."""
        import torch

        chunks = []
        with torch.no_grad():
            for start in range(0, len(images), self.batch_size):
                batch = torch.stack([self.preprocess(rgb(im)) for im in images[start:start + self.batch_size]])
                dtype = next(self.model.parameters()).dtype
                features = self.model.encode_image(batch.to(self.device, dtype=dtype))
                chunks.append(torch.nn.functional.normalize(features.float(), dim=-1).cpu())
        return torch.cat(chunks)

    def encode_texts(self, texts: Sequence[str]) -> "Any":
        """L2-normalised text embeddings, ``(len(texts), dim)`` float32 on CPU."""
        import torch

        chunks = []
        with torch.no_grad():
            for start in range(0, len(texts), self.batch_size):
                tokens = self.tokenizer(list(texts[start:start + self.batch_size])).to(self.device)
                features = self.model.encode_text(tokens)
                chunks.append(torch.nn.functional.normalize(features.float(), dim=-1).cpu())
        return torch.cat(chunks)

    def embed_unique_images(self, images: Sequence) -> "Any":
        """Embeddings of ``images`` in order, each distinct image (by pixel hash) encoded once."""
        import torch

        keys = [image_hash(rgb(im)) for im in images]
        order = list(dict.fromkeys(keys))
        first = {k: keys.index(k) for k in order}
        embeddings = self.encode_images([images[first[k]] for k in order])
        index = {k: i for i, k in enumerate(order)}
        return embeddings[torch.tensor([index[k] for k in keys])]

    def embed_unique_texts(self, texts: Sequence[str]) -> "Any":
        """Embeddings of ``texts`` in order, each distinct text encoded once."""
        import torch

        order = list(dict.fromkeys(texts))
        embeddings = self.encode_texts(order)
        index = {t: i for i, t in enumerate(order)}
        return embeddings[torch.tensor([index[t] for t in texts])]


def load_clip(model_name: str, pretrained: str | None, device: str | None = "auto", precision: str = "fp32",
              batch_size: int = 32) -> ClipModel:
    """The shared :class:`ClipModel` for ``(model_name, pretrained, device, precision)``; built on first use.

    ``pretrained=None`` builds RANDOM weights: allowed only because tests and the tiny path ask for it
    explicitly (a real run names a tag such as ``"openai"`` or a checkpoint path).
    """
    if not isinstance(model_name, str) or not model_name:
        raise RewardConfigError(f"clip model_name={describe(model_name)} must be an open_clip model name "
                                "such as 'ViT-B-32' (or 'hf-hub:org/repo')")
    check_choice("clip precision", precision, PRECISIONS, error=RewardConfigError)
    try:
        import open_clip
    except ImportError:
        raise missing_extra("open_clip_torch", "rewards", "the CLIP reward terms") from None
    device = resolve_device(device)
    key = (model_name, pretrained, device, precision)

    def build() -> ClipModel:
        model, _, preprocess = open_clip.create_model_and_transforms(
            model_name, pretrained=pretrained, device=device, precision=precision)
        return ClipModel(model=model.eval(), preprocess=preprocess, tokenizer=open_clip.get_tokenizer(model_name),
                         device=device, key=key, batch_size=batch_size)

    return _MODELS.get(key, build)


class _ClipTerm(RewardTerm):
    value_range = (-1.0, 1.0)

    def __init__(self, model_name: str = "ViT-B-32", pretrained: str | None = "openai", device: str | None = "auto",
                 precision: str = "fp32", batch_size: int = 32, name: str | None = None) -> None:
        self.model_name, self.pretrained, self.device = model_name, pretrained, device
        self.precision, self.batch_size = precision, batch_size
        if name is not None:
            self.name = name
        self._clip: ClipModel | None = None

    @property
    def clip(self) -> ClipModel:
        """The shared model (loaded on first use)."""
        if self._clip is None:
            self._clip = load_clip(self.model_name, self.pretrained, self.device, self.precision, self.batch_size)
        return self._clip

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, model={self.model_name!r}, pretrained={self.pretrained!r})"


def target_text(item: RewardInput) -> str:
    """The text CLIP-T compares with: ``task.metadata['target_caption']`` or the instruction."""
    caption = item.task.metadata.get("target_caption") if item.task is not None else None
    return caption if isinstance(caption, str) and caption.strip() else item.instruction


class ClipTextImage(_ClipTerm):
    """CLIP-T: cosine similarity of the edited image and the target text (see module docstring)."""

    name = "clip_t"

    def _score(self, items):
        images = self.clip.embed_unique_images([item.edited for item in items])
        texts = self.clip.embed_unique_texts([target_text(item) for item in items])
        return (images * texts).sum(-1).tolist()


class ClipDirectional(_ClipTerm):
    """Directional CLIP: image change vs text change (text pair documented in the module docstring)."""

    name = "clip_dir"

    def __init__(self, *args, neutral_text: str = "a photo", min_norm: float = 1e-6, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.neutral_text = neutral_text
        self.min_norm = min_norm

    def text_pair(self, item: RewardInput) -> tuple[str, str]:
        """``(t_source, t_target)`` for one item."""
        meta = item.task.metadata if item.task is not None else {}
        source = meta.get("source_caption") or self.neutral_text
        target = meta.get("target_caption") or f"{self.neutral_text}, {item.instruction}"
        return source, target

    def _score(self, items):
        pairs = [self.text_pair(item) for item in items]
        images = self.clip.embed_unique_images([item.source for item in items] + [item.edited for item in items])
        texts = self.clip.embed_unique_texts([p[0] for p in pairs] + [p[1] for p in pairs])
        n = len(items)
        image_dir = images[n:] - images[:n]
        text_dir = texts[n:] - texts[:n]
        image_norm = image_dir.norm(dim=-1)
        cos = (image_dir * text_dir).sum(-1) / (image_norm * text_dir.norm(dim=-1)).clamp_min(1e-12)
        values, reasons = [], []
        for i in range(n):
            if float(text_dir[i].norm()) < self.min_norm:
                values.append(None)
                reasons.append(f"source and target texts embed identically ({pairs[i]!r}): no text direction")
            elif float(image_norm[i]) < self.min_norm:
                values.append(0.0)  # no image change: defined as 0 (documented)
                reasons.append(None)
            else:
                values.append(float(cos[i]))
                reasons.append(None)
        return Scores(values, reasons)


class ClipImage(_ClipTerm):
    """CLIP-I: cosine similarity of the edited and the source image (1 = identical)."""

    name = "clip_i"

    def _score(self, items):
        images = self.clip.embed_unique_images([item.source for item in items] + [item.edited for item in items])
        n = len(items)
        return (images[:n] * images[n:]).sum(-1).clamp(-1.0, 1.0).tolist()
