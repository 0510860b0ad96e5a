"""Every ``mira`` subcommand's flags come from dataclasses: one style (``--snake_case``), ``--config FILE.yaml``
(the command line wins), and the old dash spellings kept for one release with one deprecation line each."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import re

import pytest

from mira_env.train.cli import SUBCOMMANDS, main


def parser_of(name: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"mira {name}")
    importlib.import_module(SUBCOMMANDS[name][0]).add_arguments(parser)
    return parser


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_visible_flag_is_snake_case_with_help_and_config_is_there(name):
    parser = parser_of(name)
    visible = [a for a in parser._actions if a.help != argparse.SUPPRESS and a.option_strings]
    flags = [opt for a in visible for opt in a.option_strings if opt.startswith("--") and opt != "--help"]
    assert "--config" in flags
    assert [f for f in flags if "-" in f[2:]] == []  # one style: TRL's --snake_case
    assert [a.dest for a in visible if a.dest != "help" and not a.help] == []  # every flag has its help


@pytest.mark.parametrize("name, argv, expected", [
    ("eval", ["--tasks", "3", "--group-size", "2", "--max-steps", "4", "--no-baseline", "--no-progress",
              "--clip-model", "RN50", "--judge-base-url", "http://h/v1", "--tiny-vlm", "--tiny-reward-models",
              "--editor-option", "device=cpu", "--editor-option", "steps=2", "--task-file", "t.jsonl"],
     {"tasks": 3, "group_size": 2, "max_steps": 4, "baseline": False, "progress": False, "clip_model": "RN50",
      "judge_base_url": "http://h/v1", "tiny_vlm": True, "tiny_reward_models": True,
      "editor_options": {"device": "cpu", "steps": 2}, "task_file": "t.jsonl"}),
    ("run", ["--groups-per-task", "2", "--vlm-option", "max_new_tokens=8", "--report-templates", "tpl"],
     {"groups_per_task": 2, "vlm_options": {"max_new_tokens": 8}, "report_templates": "tpl"}),
    ("export", ["--num-tasks", "5", "--hf-out", "hf", "--no-progress"], {"num_tasks": 5, "hf_out": "hf", "progress": False}),
    ("audit-rewards", ["--tiny", "--noise-levels", "0,0.5", "--batch-size", "4", "--judge-api-key-env", "K"],
     {"tiny_reward_models": True, "tiny_judge": True, "noise_levels": [0.0, 0.5], "batch_size": 4,
      "judge_api_key_env": "K"}),
    ("data build", ["--top-k", "2", "--on-leak", "error", "--paraphrase-base-url", "http://p/v1"],
     {"top_k": 2, "on_leak": "error", "paraphrase_base_url": "http://p/v1"}),
])
def test_old_dash_flags_map_to_the_new_fields_with_one_warning_each(capsys, name, argv, expected):
    args = parser_of(name).parse_args(argv)
    assert {key: getattr(args, key) for key in expected} == expected
    lines = capsys.readouterr().err.splitlines()
    old = [a for a in argv if a.startswith("--") and ("-" in a[2:] or a == "--tiny")]  # --tasks is no old spelling
    assert len(lines) == len(dict.fromkeys(old))  # ONE line per old flag, even when repeated
    for line, flag in zip(lines, dict.fromkeys(old)):
        assert re.fullmatch(rf"mira {name}: warning: {flag} is deprecated, use --\S+.* \(removed in the next release\)",
                            line), line


def test_the_deprecation_line_names_the_new_spelling(capsys):
    parser_of("eval").parse_args(["--group-size", "2", "--no-baseline", "--tiny-judge"])
    assert capsys.readouterr().err.splitlines() == [
        "mira eval: warning: --group-size is deprecated, use --group_size (removed in the next release)",
        "mira eval: warning: --no-baseline is deprecated, use --baseline false (removed in the next release)",
        "mira eval: warning: --tiny-judge is deprecated, use --tiny_judge (removed in the next release)"]


def test_old_model_spellings_of_train_commands(capsys):
    from mira_env.train.sft import resolve

    args = parser_of("train sft").parse_args(["--model", "some/hub-id", "--use_lora", "--output_dir", "o"])
    model_args, _, _ = resolve(args)
    assert (model_args.model_name_or_path, model_args.use_peft) == ("some/hub-id", True)
    assert capsys.readouterr().err.splitlines() == [
        "mira train sft: warning: --model is deprecated, use --model_name_or_path (removed in the next release)",
        "mira train sft: warning: --use_lora is deprecated, use --use_peft (removed in the next release)"]
    # the old names as YAML / dict keys too
    model_args, _, _ = resolve({"tiny": "qwen2_5_vl", "output_dir": "o"})
    assert model_args.tiny_vlm == "qwen2_5_vl" and model_args.tiny == "qwen2_5_vl"
    assert "setting 'tiny' is deprecated, use 'tiny_vlm'" in capsys.readouterr().err


def test_config_yaml_then_command_line_for_run(tmp_path, capsys):
    from mira_env.train.commands.run import resolve

    config = tmp_path / "run.yaml"
    config.write_text("agents: [oracle]\ntasks: 3\ngroup_size: 1\nseed: 4\nname: yaml-run\n")
    settings, command = resolve(parser_of("run").parse_args(["--config", str(config), "--seed", "9"]))
    assert (settings.agents, settings.tasks, settings.group_size, settings.seed) == (["oracle"], 3, 1, 9)
    assert command.name == "yaml-run" and settings.out.endswith("yaml-run")
    (tmp_path / "bad.yaml").write_text("num_taks: 3\n")
    assert main(["run", "--config", str(tmp_path / "bad.yaml")]) == 2
    assert "unknown setting(s) ['num_taks']" in capsys.readouterr().err


def test_one_definition_of_the_reward_model_options():
    from mira_env.agents.commands.metrics import MetricOptions, RewardModelOptions
    from mira_env.train.commands.audit_rewards import AuditArguments
    from mira_env.train.grpo import GRPOEnvArguments

    shared = [f.name for f in dataclasses.fields(RewardModelOptions)]
    for cls in (MetricOptions, AuditArguments, GRPOEnvArguments):
        assert issubclass(cls, RewardModelOptions)
        mine = {f.name: f.default for f in dataclasses.fields(cls)}
        assert {n: mine[n] for n in shared} == {f.name: f.default for f in dataclasses.fields(RewardModelOptions)}
    # grpo's judge spellings stay valid
    grpo = parser_of("train grpo").parse_args(["--judge_backend", "openai", "--judge_model", "m", "--judge_base_url",
                                               "http://h/v1", "--judge_api_key_env", "K"])
    assert (grpo.judge_backend, grpo.judge_model, grpo.judge_base_url, grpo.judge_api_key_env) == (
        "openai", "m", "http://h/v1", "K")


def test_run_and_eval_share_the_shapes_default_task_count():
    from mira_env.agents.commands import SHAPES_DEFAULT_TASKS, evaluate, run

    assert run.SHAPES_DEFAULT_TASKS is evaluate.SHAPES_DEFAULT_TASKS is SHAPES_DEFAULT_TASKS
    assert run.RunSettings().resolved()["tasks"] == SHAPES_DEFAULT_TASKS
