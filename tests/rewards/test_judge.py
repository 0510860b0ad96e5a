"""VLM judge: score parsing, the cache, the OpenAI-compatible backend against a real local HTTP
server, the local transformers backend on a tiny Qwen2.5-VL, and the editscore extra."""

from __future__ import annotations

import base64
import io
import json
import math

import pytest
from PIL import Image

from mira_env.rewards import build_reward
from mira_env.rewards.errors import MissingExtraError, RewardConfigError
from mira_env.rewards.judge import JudgeCache, JudgeTerm, VLMJudge, parse_scores
from mira_env.rewards.judge.core import PromptedBackend
from mira_env.rewards.judge.openai_backend import OpenAIJudge
from tests.chat_server import ChatServer
from tests.rewards.conftest import make_item


# ------------------------------------------------------------------------------------------- parsing
@pytest.mark.parametrize("text, values", [
    ('{"score": [7, 8], "reasoning": "fine"}', (7.0, 8.0)),
    ('Sure!\n```json\n{"score": [3, 4.5], "reasoning": "x"}\n```', (3.0, 4.5)),
    ('{"reasoning": "ok", "score": 6}', (6.0,)),
    ('{"SC": 7, "PQ": 9}', (7.0, 9.0)),
    ("SC: 7", (7.0,)),
    ("SC: 7, PQ = 8.5", (7.0, 8.5)),
    ("Score: 6/10", (6.0,)),
    ("7/10", (7.0,)),
    ("I would give it 4/5", (8.0,)),
    ("[6, 9]", (6.0, 9.0)),
    ("8", (8.0,)),
    ("  7, 9 ", (7.0, 9.0)),
])
def test_parse_scores(text, values):
    assert parse_scores(text).values == values


@pytest.mark.parametrize("text, reason", [
    ("The edit looks good.", "no score found in the answer"),
    ("I see 3 circles and 2 squares", "no score found in the answer"),
    ('{"score": [7, 12]}', "score(s) [12.0] outside [0, 10]"),
    ("", "empty answer"),
    (None, "answer is NoneType"),
])
def test_parse_scores_unparseable(text, reason):
    parsed = parse_scores(text)
    assert parsed.values is None and parsed.reason == reason


# ------------------------------------------------------------------------------- core + cache
class ScriptedBackend(PromptedBackend):
    """A prompted backend whose 'model' answers from a fixed table keyed by aspect: a real backend
    implementation (prompt -> text -> parse), for the cache and term arithmetic."""

    def __init__(self, answers):
        super().__init__()
        self.answers, self.seen, self.id = answers, [], "scripted"

    def generate(self, requests):
        self.seen.extend(requests)
        return [self.answers[r.aspect] for r in requests]


def test_judge_terms_overall_and_cache(images):
    source, near, far = images
    backend = ScriptedBackend({"sc": '{"score": [9, 4]}', "pq": "naturalness: 8, artifacts: 6"})
    judge = VLMJudge(backend)
    terms = [JudgeTerm(judge, "sc"), JudgeTerm(judge, "pq"), JudgeTerm(judge, "overall")]
    items = [make_item(source, near), make_item(source, far), make_item(source, near)]  # item 2 repeats item 0
    sc, pq, overall = (t.score(items) for t in terms)
    assert list(sc) == [4.0] * 3 and list(pq) == [6.0] * 3  # VIEScore: min of the two sub-scores
    assert list(overall) == pytest.approx([math.sqrt(24.0)] * 3)
    # 2 distinct SC + 2 distinct PQ requests, in 2 backend calls; overall came entirely from the cache
    assert len(backend.seen) == 4 and judge.calls == 2
    terms[2].score(items)
    assert len(backend.seen) == 4 and judge.cache.hits >= 4


def test_unparseable_answer_gives_none_with_raw(images):
    source, near, _ = images
    judge = VLMJudge(ScriptedBackend({"sc": "The edit is lovely.", "pq": "7/10"}))
    term = JudgeTerm(judge, "overall")
    scores = term.score([make_item(source, near)])
    assert scores[0] is None
    assert "unparseable judge answer: no score found in the answer" in scores.reasons[0]
    sc_results = judge.score([make_item(source, near)], "sc")
    assert sc_results[0].raw == "The edit is lovely." and sc_results[0].cached


def test_cache_persists_to_jsonl(tmp_path, images):
    source, near, _ = images
    path = tmp_path / "judge.jsonl"
    first = ScriptedBackend({"sc": "[5, 7]", "pq": "[8, 8]"})
    VLMJudge(first, JudgeCache(path=path)).score([make_item(source, near)], "sc")
    second = ScriptedBackend({"sc": "[1, 1]", "pq": "[1, 1]"})
    result = VLMJudge(second, JudgeCache(path=path)).score([make_item(source, near)], "sc")
    assert result[0].score == 5.0 and second.seen == []


def test_cache_key_depends_on_instruction_and_images(images):
    source, near, far = images
    backend = ScriptedBackend({"sc": "[5, 5]", "pq": "[5, 5]"})
    judge = VLMJudge(backend)
    judge.score([make_item(source, near, "a"), make_item(source, near, "b"), make_item(source, far, "a")], "sc")
    assert len(backend.seen) == 3
    judge.score([make_item(source, near, "a"), make_item(source, far, "zzz")], "pq")  # PQ ignores instruction
    assert len(backend.seen) == 5
    judge.score([make_item(far, near, "other")], "pq")
    assert len(backend.seen) == 5


# ------------------------------------------------------------------------- OpenAI-compatible server
def _decode_images(body):
    parts = body["messages"][0]["content"]
    uris = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    assert all(u.startswith("data:image/png;base64,") for u in uris)
    return [Image.open(io.BytesIO(base64.b64decode(u.split(",", 1)[1]))) for u in uris]


def _answer_by_aspect(body):
    text = body["messages"][0]["content"][-1]["text"]
    return '{"score": [6, 9], "reasoning": "ok"}' if "ORIGINAL" in text else "naturalness: 8, artifacts: 7"


def test_openai_backend_end_to_end(monkeypatch, images):
    source, near, far = images
    monkeypatch.setenv("MIRA_TEST_KEY", "sk-secret-value")
    with ChatServer(answer=_answer_by_aspect) as server:
        backend = OpenAIJudge("judge-model", base_url=server.base_url, api_key_env="MIRA_TEST_KEY",
                              timeout_s=5, max_retries=1, backoff_s=0.01, concurrency=3)
        judge = VLMJudge(backend)
        items = [make_item(source, near, "add a hat"), make_item(source, far, "add a hat")]
        overall = JudgeTerm(judge, "overall").score(items)
        assert list(overall) == pytest.approx([math.sqrt(6 * 7)] * 2)
        assert len(server.requests) == 4  # 2 SC + 2 PQ, nothing twice
        sc_request = next(r for r in server.requests if "ORIGINAL" in r["body"]["messages"][0]["content"][-1]["text"])
        assert sc_request["path"] == "/v1/chat/completions" and sc_request["body"]["model"] == "judge-model"
        assert sc_request["auth"] == "Bearer sk-secret-value"
        decoded = _decode_images(sc_request["body"])
        assert len(decoded) == 2 and decoded[0].tobytes() == source.tobytes()
        assert "add a hat" in sc_request["body"]["messages"][0]["content"][-1]["text"]
        assert "sk-secret-value" not in repr(backend) and "$MIRA_TEST_KEY" in repr(backend)
        backend.close()


def test_openai_retries_after_500(images):
    source, near, _ = images
    with ChatServer(answer='{"score": [5, 6]}', fail_first=2) as server:
        backend = OpenAIJudge("m", base_url=server.base_url, api_key_env=None, max_retries=3, backoff_s=0.01)
        result = VLMJudge(backend).score([make_item(source, near)], "sc")
        assert result[0].score == 5.0 and len(server.requests) == 3
        assert server.requests[0]["auth"] is None


def test_openai_gives_up_after_retries(images):
    source, near, _ = images
    with ChatServer(fail_first=100) as server:
        backend = OpenAIJudge("m", base_url=server.base_url, api_key_env=None, max_retries=2, backoff_s=0.01)
        judge = VLMJudge(backend)
        (result,) = judge.score([make_item(source, near)], "pq")
        assert result.score is None and len(server.requests) == 3
        assert "failed after 3 attempts; last: HTTP 500" in result.reason
        assert len(judge.cache) == 0  # transport failures are not cached: retried next time


def test_openai_client_error_not_retried(images):
    source, near, _ = images
    with ChatServer(fail_first=100, status=401) as server:
        backend = OpenAIJudge("m", base_url=server.base_url, api_key_env=None, max_retries=3, backoff_s=0.01)
        (result,) = VLMJudge(backend).score([make_item(source, near)], "pq")
        assert len(server.requests) == 1 and "answered HTTP 401" in result.reason and "(not retried)" in result.reason


def test_openai_unparseable_answer(images):
    source, near, _ = images
    with ChatServer(answer="I cannot judge images.") as server:
        judge = VLMJudge(OpenAIJudge("m", base_url=server.base_url, api_key_env=None))
        scores = JudgeTerm(judge, "sc").score([make_item(source, near)])
        assert scores[0] is None and "unparseable judge answer" in scores.reasons[0]
        assert judge.score([make_item(source, near)], "sc")[0].raw == "I cannot judge images."
        assert len(server.requests) == 1


def test_openai_connection_refused_is_none(images):
    source, near, _ = images
    with ChatServer() as server:
        url = server.base_url
    backend = OpenAIJudge("m", base_url=url, api_key_env=None, max_retries=1, backoff_s=0.01, timeout_s=2)
    (result,) = VLMJudge(backend).score([make_item(source, near)], "pq")
    assert result.score is None and "ConnectError" in result.reason


@pytest.mark.parametrize("kwargs, message", [
    ({"api_key_env": "MIRA_SURELY_UNSET_KEY"},
     "the judge API key environment variable 'MIRA_SURELY_UNSET_KEY' is not set; export it, or pass "
     "api_key_env=None for a local server that needs no key"),
    ({"base_url": "127.0.0.1:8000"}, "judge base_url='127.0.0.1:8000' (type str) must start with http:// or https://"),
    ({"concurrency": 0, "api_key_env": None}, "judge concurrency=0 (type int) must be a positive int"),
])
def test_openai_bad_arguments(kwargs, message):
    kwargs = {"base_url": "http://127.0.0.1:9/v1", **kwargs}
    with pytest.raises(RewardConfigError) as info:
        OpenAIJudge("m", **kwargs)
    assert str(info.value) == message


def test_build_reward_with_openai_judge(images):
    source, near, _ = images
    with ChatServer(answer=_answer_by_aspect) as server:
        reward = build_reward({"terms": ["judge_sc", "judge_pq", {"name": "judge_overall", "weight": 0}],
                               "judge": {"backend": "openai", "model": "m", "base_url": server.base_url,
                                         "api_key_env": None}})
        (out,) = reward.score([make_item(source, near)])
        assert out.components == pytest.approx({"judge_sc": 6.0, "judge_pq": 7.0, "judge_overall": math.sqrt(42)})
        assert out.total == pytest.approx(13.0) and len(server.requests) == 2


# --------------------------------------------------------------------------------------- editscore
def test_editscore_missing_extra():
    pytest.importorskip("mira_env.rewards.judge.editscore_backend")
    try:
        import editscore  # noqa: F401
        pytest.skip("editscore is installed here")
    except ImportError:
        pass
    with pytest.raises(MissingExtraError) as info:
        build_reward({"terms": ["judge_sc"], "judge": {"backend": "editscore"}})
    assert str(info.value) == ("the 'editscore' judge backend needs the 'editscore' package, which is not installed; "
                               "install it with: pip install 'mira-env[editscore]'")


def test_editscore_backend_maps_scores(images):
    """The adapter logic on an object with editscore's batch_evaluate signature and output keys."""
    from mira_env.rewards.judge.editscore_backend import EditScoreJudge

    class Scorer:
        def __init__(self):
            self.batches = []

        def batch_evaluate(self, image_prompts, text_prompts):
            self.batches.append(len(image_prompts))
            return [{"SC_score": 2.0 + len(t), "PQ_score": 5.0, "O_score": 0.0} for t in text_prompts]

    scorer = Scorer()
    judge = VLMJudge(EditScoreJudge(scorer=scorer))
    source, near, _ = images
    values = JudgeTerm(judge, "overall").score([make_item(source, near, "abc")])
    assert values[0] == pytest.approx(math.sqrt(5.0 * 5.0)) and scorer.batches == [1]  # SC+PQ: one evaluation


# ------------------------------------------------------------------------- transformers (tiny VLM)
@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory):
    vlm = pytest.importorskip("mira_env.tiny.vlm")
    return str(vlm.build_tiny_vlm("qwen2_5_vl", tmp_path_factory.mktemp("tiny_vlm") / "qwen2_5_vl"))


def _suppress(path):
    from transformers import AutoProcessor

    from mira_env.tiny.vlm import suppress_token_ids

    return suppress_token_ids(AutoProcessor.from_pretrained(path))


def test_transformers_judge_random_model_is_unparseable(tiny_vlm, images):
    source, near, far = images
    reward = build_reward({"device": "cpu", "terms": ["judge_sc", "judge_pq"],
                           "judge": {"backend": "transformers", "model": tiny_vlm, "max_new_tokens": 8,
                                     "generate_kwargs": {"suppress_tokens": _suppress(tiny_vlm)}}})
    outputs = reward.score([make_item(source, near), make_item(source, far)])
    judge = reward.terms[0].judge
    assert judge.calls == 2 and judge.judged == 4  # one batched generate per aspect
    for out in outputs:
        assert out.total is None
        assert out.errors["judge_sc"].startswith("unparseable judge answer")
    raw = reward.terms[0].last_results[0].raw
    assert isinstance(raw, str) and raw == judge.score([make_item(source, near)], "sc")[0].raw


def test_transformers_judge_parses_generated_answer(tiny_vlm, images):
    """A logits processor forces the tiny model to write a VIEScore answer: generation, batched decoding
    of only the new tokens, and parsing are the real code path."""
    import torch
    from transformers import AutoProcessor, LogitsProcessor, LogitsProcessorList

    from mira_env.rewards.judge.transformers_backend import TransformersJudge

    tokenizer = AutoProcessor.from_pretrained(tiny_vlm).tokenizer
    target = tokenizer('{"score": [7, 3]}', add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]

    class Force(LogitsProcessor):
        def __init__(self):
            self.start = None

        def __call__(self, input_ids, scores):
            if self.start is None:
                self.start = input_ids.shape[1]
            step = min(input_ids.shape[1] - self.start, len(target) - 1)
            forced = torch.full_like(scores, -float("inf"))
            forced[:, target[step]] = 0.0
            return forced

    class Forcing(TransformersJudge):
        def generate(self, requests):
            self.generate_kwargs["logits_processor"] = LogitsProcessorList([Force()])
            return super().generate(requests)

    source, near, far = images
    judge = VLMJudge(Forcing(tiny_vlm, device="cpu", max_new_tokens=len(target) + 2, batch_size=2))
    results = judge.score([make_item(source, near), make_item(source, far), make_item(source, near, "x")], "sc")
    assert [r.score for r in results] == [3.0, 3.0, 3.0]
    assert all(r.raw == '{"score": [7, 3]}' and r.subscores == (7.0, 3.0) for r in results)


# ---------------------------------------------------------------------- issue 12, item 8: the score parser
@pytest.mark.parametrize("answer, values", [
    ("Image [1] is the source and image [2] the edit. SC: 9", (9.0,)),
    ('{"reasoning": "the } brace and a { too", "score": 8}', (8.0,)),
    ('Here: {"result": {"score": [6, 7]}}', (6.0, 7.0)),
    ('```json\n{"reasoning": "closing } inside", "SC": 5, "PQ": 9}\n```', (5.0, 9.0)),
    ("Scores: [7, 8]", (7.0, 8.0)),
    ("figure [3] looks fine; overall 7/10", (7.0,)),
])
def test_parse_scores_reads_what_the_judge_meant(answer, values):
    assert parse_scores(answer).values == values


def test_parse_scores_is_linear_on_a_flood_of_braces():
    import time

    for flood in ("{" * 8000, '{"a": ' * 8000, "{" * 8000 + '{"score": 4}'):
        start = time.perf_counter()
        parse_scores(flood + " SC: 6")
        assert time.perf_counter() - start < 0.5, flood[:12]
    assert parse_scores("{" * 8000 + " SC: 6").values == (6.0,)


from hypothesis import given  # noqa: E402 - the property tests of this section
from hypothesis import strategies as st  # noqa: E402


@given(st.text(alphabet=st.sampled_from(list('{}[]":,0123456789 .-/SCPQscore\n')) | st.characters(), max_size=300),
       st.sampled_from([5.0, 10.0, 100.0]))
def test_parse_scores_never_raises_and_stays_in_range(answer, scale):
    parsed = parse_scores(answer, scale)
    if parsed.values is None:
        assert parsed.reason
    else:
        assert parsed.values and all(0.0 <= v <= scale for v in parsed.values)


def test_a_cached_score_outside_the_range_is_not_served(tmp_path, images):
    from mira_env.rewards.judge.core import JudgeResult, request_key
    from mira_env.rewards.judge.core import JudgeRequest as Request

    source, near, _ = images
    item = make_item(source, near)
    key = request_key(Request("sc", item.edited, item.source, item.instruction), "scripted")
    path = tmp_path / "judge.jsonl"
    rows = [{"key": key, "score": 42.0, "subscores": [42, 42], "raw": "[42, 42]", "reason": None},
            {"key": "other", "score": float("nan"), "subscores": [], "raw": None, "reason": None}, "not a row"]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{torn\n")
    cache = JudgeCache(path=path)
    assert len(cache) == 0 and cache.rejected == 4
    backend = ScriptedBackend({"sc": "[5, 7]", "pq": "[8, 8]"})
    (result,) = VLMJudge(backend, cache).score([item], "sc")
    assert result.score == 5.0 and not result.cached and len(backend.seen) == 1  # judged again, not served 42
    cache._items[key] = JudgeResult(11.0, (11.0,), "11")  # a bad in-memory entry is refused too
    assert cache.get(key) is None and cache.rejected == 5
