"""``mira audit-rewards``: which reward should I train on?

Plays shapes-world episodes of varied quality (:mod:`mira_env.rewards.audit_episodes`: oracle, partial,
one-shot, random and over-edited episodes at several editor noise levels, plus the unedited source),
scores each with every configured term and with their composite, and measures how well each ranks
episodes like the exact shapes-world oracle: Spearman and Kendall rank correlations
(``scipy.stats``). ``aligned`` correlations flip the sign of distance / cost terms (LPIPS, L1, L2,
step cost) so that higher is better for every row. It also reports each term on reference pairs:
identity (target vs target), perfect (source vs target) and no-op (source unchanged).

Writes ``<out>/results.json``, ``<out>/report.md`` and ``<out>/scatter_<term>.png`` (each term
against the oracle, coloured by episode kind).

With real weights (``--clip_model ViT-B-32 --clip_pretrained openai --lpips_net alex --judge_model
Qwen/Qwen2.5-VL-7B-Instruct`` or ``--judge_base_url``) this ranks the rewards. ``--tiny_reward_models
--tiny_judge`` build the tiny offline models (random weights) into ``--tiny_cache`` and run end to end with no
download: a plumbing check whose correlations say nothing about real models. The command's flags and its default
reward live in :mod:`mira_env.train.commands.audit_rewards`.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Sequence

from mira_env.rewards.audit_episodes import AuditEpisode, batches, reference_items

DISTANCE_TERMS = ("lpips", "l1", "l2", "step_cost", "invalid_action")


def correlations(values: Sequence[float | None], oracle: Sequence[float | None], sign: float = 1.0) -> dict:
    """Spearman / Kendall of ``values`` vs ``oracle`` over items where both are scored."""
    from scipy import stats

    pairs = [(v, o) for v, o in zip(values, oracle) if v is not None and o is not None]
    out: dict[str, Any] = {"n": len(pairs), "unscored": len(values) - len(pairs)}
    if len(pairs) < 3:
        out["note"] = f"only {len(pairs)} scored items: correlation undefined"
        return out
    xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
    if len(set(xs)) < 2 or len(set(ys)) < 2:
        out["note"] = "constant values: correlation undefined"
        return out
    spearman = stats.spearmanr(xs, ys)
    kendall = stats.kendalltau(xs, ys)
    out.update(spearman=float(spearman.statistic), spearman_p=float(spearman.pvalue),
               kendall=float(kendall.statistic), kendall_p=float(kendall.pvalue))
    out["aligned_spearman"] = sign * out["spearman"]
    out["aligned_kendall"] = sign * out["kendall"]
    return out


def _mean(values: Sequence[float | None]) -> float | None:
    scored = [v for v in values if v is not None]
    return sum(scored) / len(scored) if scored else None


def score_all(reward, items, batch_size: int, progress: bool, desc: str) -> tuple[dict[str, list], list, dict]:
    """Components per term, composite totals and one example error per term, for ``items``."""
    from tqdm.auto import tqdm

    components: dict[str, list] = {name: [] for name in reward.names}
    totals: list = []
    errors: dict[str, str] = {}
    for chunk in tqdm(list(batches(items, batch_size)), desc=desc, disable=not progress):
        for output in reward.score(chunk):
            totals.append(output.total)
            for name in reward.names:
                components[name].append(output.components.get(name))
            for name, message in output.errors.items():
                errors.setdefault(name, message)
    return components, totals, errors


def scatter(path: Path, name: str, values, oracle, kinds) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.6), dpi=100)
    for kind in dict.fromkeys(kinds):
        pts = [(o, v) for o, v, k in zip(oracle, values, kinds) if k == kind and v is not None and o is not None]
        if pts:
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=14, label=kind, alpha=0.75)
    ax.set_xlabel("oracle score")
    ax.set_ylabel(name)
    ax.set_title(f"{name} vs oracle")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6, loc="best")
    else:
        ax.text(0.5, 0.5, "no scored items", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _fmt(value) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def write_report(out: Path, results: dict) -> None:
    lines = ["# Reward audit (shapes world)", "",
             f"{results['num_episodes']} episodes; kinds {', '.join(results['kinds'])}; editor noise levels "
             f"{results['noise_levels']}; {'TINY RANDOM MODELS (plumbing check only)' if results['tiny'] else 'models as configured'}.",
             "", "Rank correlation with the shapes-world oracle (aligned: sign flipped for distance/cost terms, "
             "higher = better reward).", "",
             "| reward | weight | aligned Spearman | aligned Kendall | Spearman p | n | identity | perfect | no-op |",
             "|---|---|---|---|---|---|---|---|---|"]
    rows = sorted(results["correlations"].items(),
                  key=lambda kv: -(kv[1].get("aligned_spearman") if kv[1].get("aligned_spearman") is not None else -9))
    for name, corr in rows:
        ref = results["reference"].get(name, {})
        lines.append(f"| {name} | {results['weights'].get(name, '-')} | {_fmt(corr.get('aligned_spearman'))} | "
                     f"{_fmt(corr.get('aligned_kendall'))} | {_fmt(corr.get('spearman_p'))} | {corr['n']} | "
                     f"{_fmt(ref.get('identity'))} | {_fmt(ref.get('perfect'))} | {_fmt(ref.get('noop'))} |")
    best = next((name for name, corr in rows if corr.get("aligned_spearman") is not None), None)
    lines += ["", f"Best-aligned reward on these episodes: **{best}**." if best else "No reward could be ranked.", ""]
    if results["errors"]:
        lines += ["## Unscored items (first reason per term)", ""]
        lines += [f"- `{name}`: {message}" for name, message in results["errors"].items()]
        lines.append("")
    lines += ["## Scatter plots", ""] + [f"![{name}]({file})" for name, file in results["plots"].items()]
    (out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def run_audit(config: Any, out: str | Path, episodes: Sequence[AuditEpisode], batch_size: int = 16,
              progress: bool = True, tiny: bool = False, noise_levels: Sequence[float] = (),
              kinds: Sequence[str] = ()) -> dict:
    """Score ``episodes`` with the reward of ``config``; write the report into ``out``; return the results."""
    from mira_env.rewards.oracle import OracleReward
    from mira_env.rewards.registry import build_reward

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    reward = build_reward(config)
    items = [e.item for e in episodes]
    oracle = list(OracleReward().score(items))
    start = time.perf_counter()
    components, totals, errors = score_all(reward, items, batch_size, progress, "scoring episodes")
    seconds = time.perf_counter() - start
    components["composite"] = totals
    signs = {name: (-1.0 if name in DISTANCE_TERMS else 1.0) for name in components}
    corr = {name: correlations(values, oracle, signs[name]) for name, values in components.items()}
    reference: dict[str, dict] = {name: {} for name in components}
    for ref_name, ref_items in reference_items(episodes).items():
        ref_components, ref_totals, _ = score_all(reward, ref_items, batch_size, False, ref_name)
        ref_components["composite"] = ref_totals
        ref_components["oracle"] = list(OracleReward().score(ref_items))
        for name, values in ref_components.items():
            reference.setdefault(name, {})[ref_name] = _mean(values)
    kinds_list = [e.kind for e in episodes]
    plots = {}
    for name, values in components.items():
        file = f"scatter_{name}.png"
        scatter(out / file, name, values, oracle, kinds_list)
        plots[name] = file
    results = {
        "num_episodes": len(episodes), "noise_levels": list(noise_levels), "kinds": list(kinds), "tiny": tiny,
        "weights": {**dict(zip(reward.names, reward.weights)), "composite": "total"},
        "normalization": reward.normalization, "scoring_seconds": seconds,
        "correlations": corr, "reference": reference, "errors": errors, "plots": plots,
        "episodes": [{"kind": e.kind, "noise": e.noise, "task_id": e.task_id, "steps": len(e.item.trajectory),
                      "oracle": oracle[i], **{name: components[name][i] for name in components}}
                     for i, e in enumerate(episodes)],
    }
    (out / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    write_report(out, results)
    return results
