"""``mira serve judge`` (threaded backend): the local transformers judge behind the OpenAI chat API.

The judge's ``openai`` backend talks to it exactly as to ``vllm serve``; the answers equal the in-process
TransformersJudge's (greedy decoding on the same tiny Qwen2.5-VL). tests/rewards/test_judge.py covers the
same backend against a stand-in OpenAI-compatible server (retries, 4xx, auth, malformed answers).
"""

from __future__ import annotations

import base64
import io
import json

import pytest

pytest.importorskip("httpx")
pytest.importorskip("transformers")

from mira_env.errors import ConfigError
from mira_env.http import HTTPClient, HTTPError
from mira_env.rewards.judge.core import JudgeRequest, VLMJudge
from mira_env.rewards.judge.openai_backend import OpenAIJudge
from mira_env.rewards.judge.service import JudgeServeConfig, start_judge_service
from mira_env.rewards.judge.transformers_backend import TransformersJudge
from tests.rewards.conftest import make_item


@pytest.fixture(scope="module")
def tiny_judge_model(tmp_path_factory):
    from transformers import AutoProcessor

    from mira_env.tiny.vlm import build_tiny_vlm, suppress_token_ids

    path = str(build_tiny_vlm("qwen2_5_vl", tmp_path_factory.mktemp("tiny_judge") / "qwen2_5_vl"))
    return path, {"suppress_tokens": suppress_token_ids(AutoProcessor.from_pretrained(path))}


@pytest.fixture(scope="module")
def judge_service(tiny_judge_model, monkeypatch_module):
    path, generate_kwargs = tiny_judge_model
    monkeypatch_module.setenv("MIRA_TEST_JUDGE_TOKEN", "judge-token-abcdef")
    config = JudgeServeConfig(model=path, served_model_name="tiny-judge", backend="threaded", port=0, device="cpu",
                              max_new_tokens=6, generate_kwargs=generate_kwargs, token_env="MIRA_TEST_JUDGE_TOKEN",
                              max_images=2)
    with start_judge_service(config) as running:
        yield running


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_served_judge_equals_in_process_judge(judge_service, tiny_judge_model, images):
    path, generate_kwargs = tiny_judge_model
    source, near, far = images
    items = [make_item(source, near, "add a hat"), make_item(source, far, "remove the cat")]
    remote = OpenAIJudge("tiny-judge", base_url=judge_service.url + "/v1", api_key_env="MIRA_TEST_JUDGE_TOKEN",
                         max_tokens=6, concurrency=2)
    local = TransformersJudge(path, device="cpu", max_new_tokens=6, generate_kwargs=dict(generate_kwargs))
    for aspect in ("sc", "pq"):
        served = VLMJudge(remote).score(items, aspect)
        direct = VLMJudge(local).score(items, aspect)
        assert [r.raw for r in served] == [r.raw for r in direct]
        assert all(isinstance(r.raw, str) for r in served)
    assert judge_service.service.calls == 4  # 2 aspects x 2 items, one conversation per HTTP request here
    remote.close()


def _png_uri(image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_routes_auth_and_bounds(judge_service, images):
    source, near, _ = images
    with HTTPClient(judge_service.url, max_retries=0) as anonymous:
        assert anonymous.get_json("/healthz") == {"status": "ok"}
        with pytest.raises(HTTPError) as info:
            anonymous.get_json("/v1/models")
        assert info.value.status == 401
    with HTTPClient(judge_service.url, bearer_token="judge-token-abcdef", max_retries=0) as client:
        assert client.get_json("/v1/models")["data"][0]["id"] == "tiny-judge"
        assert client.get_json("/info")["service"] == "mira-judge"
        base = {"model": "tiny-judge", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": _png_uri(source)}}, {"type": "text", "text": "rate it"}]}]}
        answer = client.post_json("/v1/chat/completions", {**base, "max_tokens": 3})
        assert answer["object"] == "chat.completion" and isinstance(answer["choices"][0]["message"]["content"], str)
        cases = [
            ({**base, "model": "other"}, 404, "model 'other' is not served here; this server serves 'tiny-judge'"),
            ({"model": "tiny-judge", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}}]}]}, 400,
             "only data:image/...;base64, URIs are accepted"),
            ({"model": "tiny-judge", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": _png_uri(near)}}] * 3}]}, 413,
             "more than max_images=2 images in one request"),
            ({"messages": []}, 400, "non-empty 'messages' list"),
        ]
        for body, status, message in cases:
            with pytest.raises(HTTPError) as info:
                client.post_json("/v1/chat/completions", body)
            assert info.value.status == status and message in str(info.value), str(info.value)


def test_judge_requests_sent_as_json_have_the_prompt(judge_service, images):
    source, near, _ = images
    request = JudgeRequest("sc", near, source, "add a hat")
    body = OpenAIJudge("tiny-judge", base_url=judge_service.url + "/v1", api_key_env=None).payload(request)
    assert json.dumps(body)  # JSON-serialisable
    assert body["messages"][0]["content"][-1]["text"] == request.prompt()


def test_config_errors():
    with pytest.raises(ConfigError, match="give the judge VLM's hub id or local folder"):
        JudgeServeConfig()
    with pytest.raises(ConfigError, match="port=0 \\(any free port\\) works with backend='threaded' only"):
        JudgeServeConfig(model="m", port=0)
