"""ARNIQA / TOPIQ through pyiqa (the ``iqa`` extra, kept out of ``all``).

What runs offline: the registry entries, the missing-extra error, argument checks, and (where pyiqa
is installed) TOPIQ from a local ``pretrained_model_path`` and ARNIQA from a pre-filled ``torch_home``
(both with RANDOM weights written by the test: plumbing, not quality). What cannot run here: the
published checkpoints themselves (they are downloaded from the pyiqa release on first use).
"""

from __future__ import annotations

import os
import sys

import pytest

from mira_env.rewards import TERMS, build_reward
from mira_env.rewards.errors import MissingExtraError, RewardConfigError
from tests.rewards.conftest import make_item, noise_image


def test_the_terms_are_registered():
    assert {"arniqa", "topiq"} <= set(TERMS)
    reward = build_reward({"device": "cpu", "terms": [{"name": "topiq", "params": {"max_side": 64}}, "arniqa"]})
    assert [t.metric for t in reward.terms] == ["topiq_nr", "arniqa"] and reward.terms[0].max_side == 64


def test_missing_pyiqa_names_the_extra(monkeypatch, images):
    monkeypatch.setitem(sys.modules, "pyiqa", None)
    reward = build_reward({"device": "cpu", "terms": ["arniqa"]})
    source, edited, _ = images
    out = reward.score([make_item(source, edited)])[0]
    assert out.total is None
    assert out.errors["arniqa"] == ("arniqa: MissingExtraError: the ARNIQA / TOPIQ image-quality terms needs the "
                                    "'pyiqa' package, which is not installed; install it with: pip install "
                                    "'mira-env[iqa]'")
    from mira_env.rewards.iqa import import_pyiqa

    with pytest.raises(MissingExtraError):
        import_pyiqa()


def test_argument_checks(tmp_path):
    from mira_env.rewards.iqa import PyiqaQuality

    with pytest.raises(RewardConfigError, match=r"pretrained_model_path='.*nope.pth' is not a file"):
        PyiqaQuality("topiq_nr", pretrained_model_path=str(tmp_path / "nope.pth"))
    with pytest.raises(RewardConfigError, match=r"max_side=4 \(type int\) must be an int >= 8 or None"):
        PyiqaQuality("arniqa", max_side=4)


@pytest.fixture(scope="module")
def pyiqa():
    return pytest.importorskip("pyiqa", reason="the iqa extra (pyiqa) is not installed")


def test_topiq_from_a_local_checkpoint(pyiqa, tmp_path):
    import torch
    from pyiqa.archs.topiq_arch import CFANet

    torch.manual_seed(0)
    net = CFANet(semantic_model_name="resnet50", model_name="cfanet_nr_koniq_res50", use_ref=False,
                 pretrained=False, backbone_pretrain=False)
    checkpoint = tmp_path / "cfanet_random.pth"
    torch.save({"params": net.state_dict()}, checkpoint)
    from mira_env.rewards.iqa import PyiqaQuality

    term = PyiqaQuality("topiq_nr", device="cpu", pretrained_model_path=str(checkpoint),
                        metric_kwargs={"backbone_pretrain": False}, max_side=64)
    scores = term.score([make_item(noise_image(0, 96), noise_image(1, 96)), make_item(noise_image(2), noise_image(3))])
    assert all(isinstance(v, float) for v in scores), scores.reasons


def test_arniqa_from_a_prefilled_torch_home(pyiqa, tmp_path):
    import torch
    import torchvision

    home = tmp_path / "torch_home"
    checkpoints = home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    resnet = torchvision.models.resnet50()
    torch.save(resnet.state_dict(), checkpoints / "resnet50-0676ba61.pth")
    encoder = torch.nn.Sequential(*list(resnet.children())[:-1])
    torch.save({f"model.{k}": v for k, v in encoder.state_dict().items()}, checkpoints / "ARNIQA.pth")
    (home / "hub" / "pyiqa").mkdir()
    torch.jit.script(torch.nn.Linear(4096, 1)).save(str(home / "hub" / "pyiqa" / "regressor_koniq10k.pth"))
    from mira_env.rewards.iqa import PyiqaQuality

    term = PyiqaQuality("arniqa", device="cpu", torch_home=str(home), max_side=64)
    scores = term.score([make_item(noise_image(0, 64), noise_image(1, 64))])
    assert isinstance(scores[0], float), scores.reasons
    assert "TORCH_HOME" not in os.environ or os.environ["TORCH_HOME"] != str(home)  # restored
