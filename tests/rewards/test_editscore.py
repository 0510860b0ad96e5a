"""The ``editscore`` judge backend against the real ``editscore`` package.

Its ``backbone='openai'`` path is the testable real interface (the local backbones hard-code CUDA):
``editscore.EditScore`` sends its own prompts with ``requests`` to a stand-in OpenAI-compatible
server that this test starts on 127.0.0.1 and that answers in EditScore's JSON format. The vLLM path
(``batch_evaluate``) runs the package's real ``batch_evaluate`` code with a stand-in for its vLLM
model object (``batch_inference``), since vLLM itself needs a GPU.
"""

from __future__ import annotations

import base64
import io
import json
import math
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from mira_env.rewards import build_reward
from tests.rewards.conftest import make_item

editscore = pytest.importorskip("editscore", reason="the editscore extra is not installed")

#: instruction -> (SC answer, PQ answer) on EditScore's default score_range of 25
ANSWERS = {
    "add a red hat": ('{"reasoning": "hat added, dog kept", "score": [20, 10]}',
                      '{"reasoning": "natural", "score": [15, 20]}'),
    "unparseable": ("I cannot rate this.", "No."),
    "rate limited": (None, None),
}


class StandIn(BaseHTTPRequestHandler):
    requests_seen: list = []

    def log_message(self, *args):  # keep the test output clean
        pass

    def do_POST(self):  # http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        content = body["messages"][0]["content"]
        text = next(part["text"] for part in content if part["type"] == "text")
        images = [part["image_url"]["url"] for part in content if part["type"] == "image_url"]
        aspect = "pq" if "naturalness" in text else "sc"
        type(self).requests_seen.append({"path": self.path, "model": body["model"], "aspect": aspect,
                                         "images": images, "auth": self.headers.get("Authorization")})
        instruction = next((k for k in ANSWERS if k in text), None)
        if aspect == "sc" and instruction is None:
            raise AssertionError(f"the SC prompt holds no known instruction: {text[-200:]!r}")
        answer = ANSWERS[instruction][0 if aspect == "sc" else 1] if instruction else ANSWERS["add a red hat"][1]
        if answer is None:
            payload = {"error": {"code": "rate_limit_exceeded", "message": "slow down"}}
        else:
            payload = {"choices": [{"message": {"role": "assistant", "content": answer}}]}
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture()
def server():
    StandIn.requests_seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", StandIn.requests_seen
    httpd.shutdown()
    httpd.server_close()


def _reward(url: str, **extra):
    kwargs = {"backbone": "openai", "openai_url": f"{url}/v1/chat/completions", "model_name_or_path": "judge-vlm",
              "key": "test-key-123", **extra}
    return build_reward({"terms": ["judge_sc", "judge_pq", {"name": "judge_overall", "weight": 1.0}],
                         "weights": [0.0, 0.0, 1.0], "judge": {"backend": "editscore", "editscore_kwargs": kwargs}})


def test_import_is_contained():
    from mira_env.rewards.judge.editscore_backend import import_editscore

    before = list(sys.path)
    had_examples = "examples" in sys.modules
    module = import_editscore()
    assert module.EditScore.__name__ == "EditScore"
    assert sys.path == before  # the package's sys.path.insert(0, 'editscore') does not survive
    assert ("examples" in sys.modules) == had_examples  # nothing imports the wheel's top-level 'examples'


def test_openai_backbone_scores_sc_as_the_min_of_subscores(server, images):
    url, seen = server
    source, edited, _ = images
    reward = _reward(url)
    out = reward.score([make_item(source, edited, "add a red hat")])[0]
    # score_range 25 -> 0-10: SC sub-scores 8.0 and 4.0, SC = min = 4.0 (prompt_following alone would be 8.0)
    assert out.components["judge_sc"] == pytest.approx(4.0)
    assert out.components["judge_pq"] == pytest.approx(6.0)  # min(15, 20) / 2.5
    assert out.total == pytest.approx(math.sqrt(4.0 * 6.0))
    assert [r["aspect"] for r in seen] == ["sc", "pq"]  # one evaluate: SC and PQ requests, no batch_evaluate
    assert {r["path"] for r in seen} == {"/v1/chat/completions"} and {r["model"] for r in seen} == {"judge-vlm"}
    assert seen[0]["auth"] == "Bearer test-key-123"
    assert [len(r["images"]) for r in seen] == [2, 1]  # SC sees source + edited, PQ the edited image only
    shown = Image.open(io.BytesIO(base64.b64decode(seen[1]["images"][0].split(",", 1)[1])))
    assert shown.size == edited.size
    judge = reward.terms[0].judge
    # judge_sc and judge_pq each ask the backend once; judge_overall is served by the judge's cache, and
    # the PQ call by the backend's memory of the evaluation it ran for SC (2 HTTP requests in all)
    assert judge.calls == 2 and judge.judged == 2


def test_passes_average_per_pass_minima(server, images):
    url, seen = server
    source, edited, _ = images
    out = _reward(url, num_pass=3).score([make_item(source, edited, "add a red hat")])[0]
    assert out.components["judge_sc"] == pytest.approx(4.0) and len(seen) == 6  # 3 passes x (SC, PQ)


def test_unparsed_answers_are_none_not_a_random_guess(server, images):
    url, seen = server
    source, edited, _ = images
    out = _reward(url).score([make_item(source, edited, "unparseable")])[0]
    assert out.total is None
    assert out.components["judge_sc"] is None and out.components["judge_pq"] is None
    assert "random guess" in out.errors["judge_sc"]
    assert len(seen) == 6  # editscore's three tries, SC and PQ each


def test_a_failing_item_fails_alone(server, images):
    url, seen = server
    source, edited, far = images
    outs = _reward(url).score([make_item(source, edited, "rate limited"), make_item(source, far, "add a red hat")])
    assert outs[0].total is None and "rate_limit_exceeded" in outs[0].errors["judge_sc"]
    assert outs[1].components["judge_sc"] == pytest.approx(4.0)


class StandInVLLM:
    """Stands in for editscore's vLLM model object: ``prepare_input`` + ``batch_inference`` (GPU-only upstream)."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = 0

    def prepare_input(self, images, prompt):
        return {"images": images, "prompt": prompt}

    def batch_inference(self, prompts, seed=None):
        self.calls += 1
        return [self.answers[i] for i in range(len(prompts))]


def test_vllm_batch_path_detects_the_midpoint_fill(images):
    """The package's real batch_evaluate, with the vLLM model object stood in: an unparsed answer is
    None here, where batch_evaluate itself scores it as the midpoint of the range."""
    from mira_env.rewards.judge.core import JudgeRequest
    from mira_env.rewards.judge.editscore_backend import EditScoreJudge

    source, edited, far = images
    judge = EditScoreJudge(backbone="openai", openai_url="http://127.0.0.1:9/v1/chat/completions",
                           model_name_or_path="m", key="k")
    # two items: SC answers, then PQ answers (the order batch_evaluate sends them in)
    stand_in = StandInVLLM(['{"reasoning": "ok", "score": [20, 15]}', "no score at all",
                            '{"reasoning": "ok", "score": [25, 25]}', '{"reasoning": "ok", "score": [10]}'])
    judge.scorer.model, judge.backbone = stand_in, "qwen25vl_vllm"
    raw = judge.scorer.batch_evaluate([[source, edited], [source, far]], ["add a hat", "make it blue"])
    assert raw[1]["SC_score"] == pytest.approx(5.0)  # the package's midpoint fill (12.5 of 25), reported as a score
    requests = [JudgeRequest("sc", edited, source, "add a hat"), JudgeRequest("pq", edited, source, "add a hat"),
                JudgeRequest("sc", far, source, "make it blue"), JudgeRequest("pq", far, source, "make it blue")]
    results = judge.judge(requests)
    assert stand_in.calls == 2  # one batch_evaluate above, one here
    assert results[0].score == pytest.approx(6.0) and results[1].score == pytest.approx(10.0)
    assert results[2].score is None and "midpoint" in results[2].reason
    assert results[3].score == pytest.approx(4.0)


def test_missing_package_names_the_extra(monkeypatch):
    from mira_env.rewards.errors import MissingExtraError
    from mira_env.rewards.judge.editscore_backend import import_editscore

    monkeypatch.setitem(sys.modules, "editscore", None)  # what an environment without the extra sees
    with pytest.raises(MissingExtraError) as info:
        import_editscore()
    assert str(info.value) == ("the 'editscore' judge backend needs the 'editscore' package, which is not installed; "
                               "install it with: pip install 'mira-env[editscore]'")


def test_num_pass_is_checked():
    from mira_env.rewards.errors import RewardConfigError
    from mira_env.rewards.judge.editscore_backend import EditScoreJudge

    with pytest.raises(RewardConfigError, match=r"editscore num_pass=0 \(type int\) must be a positive int"):
        EditScoreJudge(backbone="openai", num_pass=0)
