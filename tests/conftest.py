"""Repository-wide test settings.

Tiny models run fastest on ONE torch thread: with two threads on this 2-core machine, thread
hand-offs dominate (16 generated tokens took ~4 s on 2 busy threads versus ~0.1 s on one).
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_configure(config):
    try:
        import torch
    except ImportError:  # the core test subset runs without torch
        return
    torch.set_num_threads(1)
