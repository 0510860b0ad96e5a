"""CLIP-T / directional CLIP / CLIP-I, LPIPS and pixel L1/L2 on the tiny offline models."""

from __future__ import annotations

import pytest

from mira_env.rewards.clip import ClipDirectional, ClipImage, ClipTextImage, load_clip
from mira_env.rewards.errors import RewardConfigError
from mira_env.rewards.lpips_term import LpipsDistance
from mira_env.rewards.pixel import PixelDistance
from tests.rewards.conftest import make_item


def test_pixel_identical_is_zero_and_ordered(images):
    source, near, far = images
    items = [make_item(source, source), make_item(source, near), make_item(source, far)]
    for term in (PixelDistance(1), PixelDistance(2)):
        values = term.score(items)
        assert values[0] == 0.0
        assert 0.0 < values[1] < values[2] <= 1.0


def test_pixel_resizes_edited_to_source():
    import numpy as np
    from PIL import Image

    ramp = np.linspace(0, 255, 48, dtype=np.float32)
    source = Image.fromarray(np.stack([np.add.outer(ramp, ramp) / 2] * 3, -1).astype(np.uint8))
    inverted = Image.fromarray(255 - np.asarray(source))
    values = PixelDistance(1).score([make_item(source, source.resize((96, 96))), make_item(source, inverted.resize((96, 96)))])
    assert values[0] < 0.01 < 0.3 < values[1]


def test_pixel_power_checked():
    with pytest.raises(RewardConfigError, match=r"power=3 \(type int\) must be 1 \(L1\) or 2 \(L2\)"):
        PixelDistance(3)


def test_clip_shares_one_model(tiny_clip):
    name, ckpt = tiny_clip
    terms = [ClipTextImage(name, ckpt, device="cpu"), ClipDirectional(name, ckpt, device="cpu"),
             ClipImage(name, ckpt, device="cpu")]
    assert terms[0].clip is terms[1].clip is terms[2].clip is load_clip(name, ckpt, "cpu")


def test_clip_i_identical_is_maximal(tiny_clip, images):
    source, near, far = images
    term = ClipImage(*tiny_clip, device="cpu")
    values = term.score([make_item(source, source), make_item(source, near), make_item(source, far)])
    assert values[0] == pytest.approx(1.0, abs=1e-5)
    assert max(values[1:]) < values[0]


def test_clip_t_batched_equals_single(tiny_clip, images):
    source, near, far = images
    term = ClipTextImage(*tiny_clip, device="cpu")
    items = [make_item(source, near, "add a red square"), make_item(source, far, "remove the blue circle"),
             make_item(source, near, "remove the blue circle")]
    batched = term.score(items)
    single = [term.score([item])[0] for item in items]
    assert batched == pytest.approx(single, abs=1e-5)
    assert all(-1.0 <= v <= 1.0 for v in batched)
    assert batched[0] != pytest.approx(batched[2], abs=1e-6)  # same image, different text -> different score


def test_clip_t_prefers_target_caption(tiny_clip, images):
    source, near, _ = images
    term = ClipTextImage(*tiny_clip, device="cpu")
    plain = term.score([make_item(source, near, "x")])[0]
    caption = term.score([make_item(source, near, "x", metadata={"target_caption": "a red square on grey"})])[0]
    direct = term.score([make_item(source, near, "a red square on grey")])[0]
    assert caption == pytest.approx(direct, abs=1e-6) and caption != pytest.approx(plain, abs=1e-6)


def test_clip_dir_noop_is_zero_and_text_pair_documented(tiny_clip, images):
    source, near, far = images
    term = ClipDirectional(*tiny_clip, device="cpu")
    values = term.score([make_item(source, source), make_item(source, far)])
    assert values[0] == 0.0
    assert values[1] is not None and -1.0 <= values[1] <= 1.0 and values[1] != 0.0
    assert term.text_pair(make_item(source, far, "make it red")) == ("a photo", "a photo, make it red")


def test_clip_dir_same_texts_unscored(tiny_clip, images):
    source, _, far = images
    term = ClipDirectional(*tiny_clip, device="cpu")
    item = make_item(source, far, metadata={"source_caption": "a cat", "target_caption": "a cat"})
    scores = term.score([item])
    assert scores[0] is None and "no text direction" in scores.reasons[0]


def test_lpips_pretrained_path_offline(lpips_home, images):
    source, near, far = images
    term = LpipsDistance("squeeze", device="cpu", torch_home=lpips_home)
    values = term.score([make_item(source, source), make_item(source, near), make_item(source, far)])
    assert values[0] == 0.0
    assert 0.0 < values[1] < values[2]


def test_lpips_random_backbone_is_explicit(images):
    source, near, _ = images
    term = LpipsDistance("squeeze", device="cpu", random_backbone=True)
    values = term.score([make_item(source, source), make_item(source, near)])
    assert values[0] == 0.0 and values[1] > 0.0


def test_lpips_missing_backbone_is_an_error_not_a_fallback(tmp_path, images):
    source, near, _ = images
    term = LpipsDistance("squeeze", device="cpu", torch_home=str(tmp_path / "empty"))
    import socket

    real = socket.socket.connect

    def offline(*args, **kwargs):
        raise OSError("network disabled in this test")

    socket.socket.connect = offline
    try:
        scores = term.score([make_item(source, near)])
    finally:
        socket.socket.connect = real
    assert scores[0] is None
    assert "could not load the pretrained 'squeeze' LPIPS backbone" in scores.reasons[0]
    assert "random_backbone=True is for offline plumbing tests only" in scores.reasons[0]


@pytest.mark.parametrize("kwargs, message", [
    ({"net": "resnet"}, "lpips net='resnet' (type str) is not one of: 'alex', 'vgg', 'squeeze'"),
    ({"batch_size": 0}, "lpips batch_size=0 (type int) must be a positive int"),
])
def test_lpips_bad_arguments(kwargs, message):
    with pytest.raises(RewardConfigError) as info:
        LpipsDistance(**kwargs)
    assert str(info.value) == message


def test_lpips_a_tiny_item_is_unscored_and_the_rest_of_its_batch_keeps_scores(lpips_home, images):
    """Issue 12, item 11: one 1x1 item used to make every item of its batch None."""
    from PIL import Image

    source, near, far = images
    dot = Image.new("RGB", (1, 1), "red")
    term = LpipsDistance("squeeze", device="cpu", torch_home=lpips_home)
    alone = term.score([make_item(source, near), make_item(source, far)])
    mixed = term.score([make_item(source, near), make_item(dot, dot), make_item(source, far)])
    assert mixed[0] == pytest.approx(alone[0]) and mixed[2] == pytest.approx(alone[1])
    assert mixed[1] is None
    assert mixed.reasons[1] == "source image is 1x1: LPIPS needs at least 16x16 pixels"
