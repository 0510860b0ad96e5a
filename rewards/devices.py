"""Device resolution shared by the model-backed terms."""

from __future__ import annotations

from mira_env.rewards.errors import RewardConfigError, describe


def resolve_device(device: str | None) -> str:
    """``"auto"`` / ``None`` -> ``"cuda"`` when available else ``"cpu"``; other strings are checked by torch."""
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not isinstance(device, str):
        raise RewardConfigError(f"device={describe(device)} must be a str such as 'cpu', 'cuda', 'cuda:1' or 'auto'")
    try:
        torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise RewardConfigError(f"device={device!r} is not a torch device ({exc}); use 'cpu', 'cuda', 'cuda:N' "
                                "or 'auto'") from None
    return device
