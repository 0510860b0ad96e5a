"""``mira serve judge``: serve a local transformers VLM judge as an OpenAI-compatible endpoint.

Flags are generated from :class:`mira_env.rewards.judge.service.JudgeServeConfig` plus ``--config
FILE.yaml``; it stops cleanly on SIGINT / SIGTERM. Point the judge's ``openai`` backend at it (``base_url:
http://127.0.0.1:8200/v1``), exactly as at a ``vllm serve`` endpoint; see docs/serving.md.
"""

from __future__ import annotations

import argparse

from mira_env.train.config import add_command_arguments, resolve_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mira_env.rewards.judge.service import JudgeServeConfig

    add_command_arguments(parser, [(JudgeServeConfig, "judge service")])


def main(args: argparse.Namespace) -> int:
    from mira_env.rewards.judge.service import JudgeServeConfig, start_judge_service
    from mira_env.serve import serve_until_signal

    (config,) = resolve_config([JudgeServeConfig], args)
    return serve_until_signal(start_judge_service(config), "judge service")
