"""The reward audit on the shapes world, on tiny models (a small number of episodes)."""

from __future__ import annotations

import json

import pytest

from mira_env.rewards import audit
from mira_env.train.cli import main as mira
from mira_env.rewards.audit_episodes import KINDS, generate_episodes, reference_items
from mira_env.rewards.oracle import OracleReward
from tests.rewards.conftest import make_item, noise_image


@pytest.fixture(scope="module")
def episodes():
    return generate_episodes(12, noise_levels=(0.0, 0.5), seed=0, resolution=48, progress=False)


def test_episodes_vary_in_quality(episodes):
    assert [e.kind for e in episodes[:6]] == list(KINDS) and {e.noise for e in episodes} == {0.0, 0.5}
    oracle = OracleReward().score([e.item for e in episodes])
    assert all(v is not None for v in oracle)
    assert oracle[0] == 1.0  # the replanning oracle on an exact editor reaches the target
    assert min(oracle) < 0.9 and len(set(oracle)) >= 4
    noop = episodes[KINDS.index("noop")]
    assert noop.item.trajectory == [] and noop.item.edited.tobytes() == noop.item.source.tobytes()


def test_reference_items(episodes):
    refs = reference_items(episodes, limit=3)
    assert {k: len(v) for k, v in refs.items()} == {"identity": 3, "perfect": 3, "noop": 3}
    assert list(OracleReward().score(refs["identity"])) == [1.0] * 3
    assert list(OracleReward().score(refs["perfect"])) == [1.0] * 3
    assert all(v < 1.0 for v in OracleReward().score(refs["noop"]))


def test_oracle_term_unscorable_outside_shapes():
    image = noise_image(0, 8)
    scores = OracleReward().score([make_item(image, image)])
    assert scores[0] is None and scores.reasons[0] == ("cannot score: the edited image carries no scene "
                                                       "(shapes-world tasks only)")


def test_correlations_sign_and_undefined():
    corr = audit.correlations([1, 2, 3, 4], [0.1, 0.2, 0.3, 0.4], sign=-1.0)
    assert corr["spearman"] == pytest.approx(1.0) and corr["aligned_spearman"] == pytest.approx(-1.0)
    assert corr["kendall"] == pytest.approx(1.0)
    assert audit.correlations([1, None, 3], [1, 2, 3])["note"] == "only 2 scored items: correlation undefined"
    assert audit.correlations([1, 1, 1, 1], [1, 2, 3, 4])["note"] == "constant values: correlation undefined"


def test_audit_cli_writes_report_on_tiny_models(tmp_path, tiny_clip, lpips_home, capsys):
    """``mira audit-rewards`` end to end on the session's tiny CLIP and LPIPS builds (given as real model flags), no
    judge."""
    out = tmp_path / "report"
    assert mira(["audit-rewards", "--clip_model", tiny_clip[0], "--clip_pretrained", tiny_clip[1], "--lpips_net",
                 "squeeze", "--lpips_torch_home", str(lpips_home), "--episodes", "12", "--noise_levels", "0", "0.5",
                 "--resolution", "48", "--out", str(out), "--device", "cpu", "--progress", "false",
                 "--batch_size", "8"]) == 0
    assert capsys.readouterr().err == ""
    results = json.loads((out / "results.json").read_text())
    assert results["num_episodes"] == 12 and len(results["episodes"]) == 12 and results["noise_levels"] == [0.0, 0.5]
    assert "judge_overall" not in results["correlations"]  # no judge configured: no judge terms
    for name in ("clip_t", "clip_dir", "clip_i", "lpips", "l1", "l2", "step_cost", "composite"):
        assert (out / f"scatter_{name}.png").stat().st_size > 1000
        assert results["correlations"][name]["n"] == 12
    l1 = results["correlations"]["l1"]
    assert -1.0 <= l1["spearman"] <= 1.0 and l1["aligned_spearman"] == pytest.approx(-l1["spearman"])
    assert results["reference"]["l1"]["identity"] == 0.0 and results["reference"]["clip_i"]["identity"] == \
        pytest.approx(1.0, abs=1e-5)
    assert results["reference"]["oracle"]["perfect"] == 1.0
    report = (out / "report.md").read_text()
    assert "| reward | weight | aligned Spearman" in report and "![composite](scatter_composite.png)" in report


def test_audit_rejects_unknown_kind(tmp_path, capsys):
    assert mira(["audit-rewards", "--kinds", "oracle,teleport", "--episodes", "2", "--out", str(tmp_path),
                 "--progress", "false", "--clip_pretrained", ""]) == 2
    assert "teleport" in capsys.readouterr().err
