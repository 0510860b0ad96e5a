"""Policy families on tiny replicas that carry the REAL chat templates and processor settings."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from mira_env.agents.families import (FAMILIES, EDIT_TOOL_SCHEMA, FamilyError, family_of, get_family,
                                      prepare_processor, suppress_token_ids, template_problem)
from mira_env.agents.prompt import Turn, build_conversation, conversation_tools
from mira_env.tiny.vlm import IMAGE_SETTINGS, KINDS, build_tiny_vlm, chat_template


@pytest.fixture(scope="module", params=KINDS)
def replica(request, tmp_path_factory):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = build_tiny_vlm(request.param, tmp_path_factory.mktemp("fam") / request.param)
    return request.param, path, AutoModelForImageTextToText.from_pretrained(path), AutoProcessor.from_pretrained(path)


def test_replicas_ship_the_real_template_and_processor_settings(replica):
    kind, _, model, processor = replica
    family = family_of(model)
    assert family.name == kind
    assert processor.chat_template == family.upstream_chat_template() == chat_template(kind)
    image = processor.image_processor
    settings = family.image
    assert (image.patch_size, image.merge_size, image.temporal_patch_size) == (
        settings.patch_size, settings.merge_size, settings.temporal_patch_size)
    assert (image.size["shortest_edge"], image.size["longest_edge"]) == (settings.min_pixels, settings.max_pixels)
    assert tuple(image.image_mean) == pytest.approx(settings.image_mean)
    assert tuple(image.image_std) == pytest.approx(settings.image_std)
    assert IMAGE_SETTINGS[kind]["min_pixels"] == settings.min_pixels
    # as on the real models: a 64x64 image is 4 tokens on Qwen2.5-VL (56x56 minimum), 64 on Qwen3-VL (256x256)
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    factor = settings.patch_size * settings.merge_size
    h, w = smart_resize(64, 64, factor=factor, min_pixels=settings.min_pixels, max_pixels=settings.max_pixels)
    assert (h // settings.patch_size) * (w // settings.patch_size) // settings.merge_size ** 2 == {
        "qwen2_5_vl": 4, "qwen3_vl": 64}[kind]


def test_the_upstream_template_is_replaced_logged_and_passes_trl(replica, caplog):
    from transformers import AutoProcessor
    from trl.chat_template_utils import (get_training_chat_template, is_chat_template_prefix_preserving,
                                         is_chat_template_stop_token_trained, supports_tool_calling)

    kind, path, model, _ = replica
    processor = AutoProcessor.from_pretrained(path)
    assert template_problem(processor) == "it does not render the edit tool call as <edit>X</edit>"
    if kind == "qwen2_5_vl":  # MIRA's own base model: upstream fails TRL's check in GRPOTrainer.__init__
        assert not supports_tool_calling(processor)
    with caplog.at_level(logging.WARNING, logger="mira_env.agents.families"):
        family = prepare_processor(processor, model, source="base")
    assert family is FAMILIES[kind]
    assert processor.chat_template == family.chat_template()
    assert f"using the {kind} family's template {kind}_mira.jinja" in caplog.text
    assert template_problem(processor) is None
    assert supports_tool_calling(processor) and is_chat_template_prefix_preserving(processor)
    assert is_chat_template_stop_token_trained(processor)
    assert get_training_chat_template(processor) is None  # prefix-preserving AND generation markers
    assert processor.tokenizer.response_template == family.response_template
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mira_env.agents.families"):
        prepare_processor(processor, model)  # already right: kept, nothing logged
    assert caplog.text == ""


def _conversation(sizes):
    rng = np.random.default_rng(0)

    def image(size):
        return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))

    turns = [Turn(f"<edit>step {i}</edit>", image(size)) for i, size in enumerate(sizes[1:], 1)]
    return build_conversation("make it all red", image(sizes[0]), turns, edit_budget=5, system_prompt="")


def test_image_tokens_equal_vision_features_in_a_multi_turn_conversation(replica):
    from transformers import AutoProcessor

    _, path, model, _ = replica
    processor = AutoProcessor.from_pretrained(path)
    prepare_processor(processor, model)
    sizes = [(64, 64), (48, 80), (96, 64), (64, 64)]  # I0 (shown twice) and three tool images of other sizes
    messages = _conversation(sizes)
    inputs = processor.apply_chat_template(messages, tools=conversation_tools("multi_turn"), tokenize=True,
                                           add_generation_prompt=True, return_dict=True, return_tensors="pt")
    assert inputs["image_grid_thw"].shape[0] == 5
    image_token = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    with torch.no_grad():
        features = model.model.get_image_features(inputs["pixel_values"], inputs["image_grid_thw"])
    features = getattr(features, "pooler_output", features)
    count = sum(int(f.shape[0]) for f in features) if isinstance(features, (list, tuple)) else int(features.shape[0])
    assert int((inputs["input_ids"] == image_token).sum()) == count
    # and the model runs on it: image tokens and features match inside the forward too
    with torch.no_grad():
        out = model(**inputs)
    assert out.logits.shape[1] == inputs["input_ids"].shape[1]


def test_tool_calls_and_answer_text_render_the_same(replica):
    from transformers import AutoProcessor

    _, path, model, _ = replica
    processor = AutoProcessor.from_pretrained(path)
    prepare_processor(processor, model)
    as_text = [{"role": "user", "content": [{"type": "text", "text": "C"}]},
               {"role": "assistant", "content": [{"type": "text", "text": "<edit>make it red</edit>"}]}]
    as_call = [as_text[0], {"role": "assistant", "content": [{"type": "text", "text": ""}], "tool_calls": [
        {"type": "function", "function": {"name": "edit", "arguments": {"instruction": "make it red"}}}]}]
    render = [processor.apply_chat_template(m, tools=[EDIT_TOOL_SCHEMA], tokenize=False) for m in (as_text, as_call)]
    assert render[0] == render[1]
    assert "Call the function edit by writing <edit>INSTRUCTION</edit>" in render[0]
    # TRL's response parsing reads it back as the tool call
    parsed = processor.tokenizer.parse_response("<edit>make it red</edit><|im_end|>", prefix="<|im_start|>assistant\n")
    assert parsed["tool_calls"][0]["function"] == {"name": "edit", "arguments": {"instruction": "make it red"}}


def test_suppressed_tokens_are_the_vision_placeholders(replica):
    kind, _, _, processor = replica
    ids = suppress_token_ids(processor, get_family(kind))
    assert processor.tokenizer.convert_ids_to_tokens(ids) == list(FAMILIES[kind].vision_tokens)


def test_unknown_family_names_the_fix(replica, tmp_path):
    _, _, model, processor = replica

    class Config:
        model_type = "llava"

    with pytest.raises(FamilyError, match=r"model_type='llava' belongs to no MIRA policy family .*"
                                          r"chat_template_path=<file.jinja> \(TRL's chat_template_path setting\)"):
        prepare_processor(processor, Config())
    bad = tmp_path / "plain.jinja"
    bad.write_text(chat_template("qwen2_5_vl"))
    with pytest.raises(FamilyError, match="cannot render the MIRA conversation: it does not render the edit tool"):
        prepare_processor(processor, Config(), chat_template_path=str(bad))
    good = tmp_path / "mira.jinja"
    good.write_text(FAMILIES["qwen2_5_vl"].chat_template())
    assert prepare_processor(processor, Config(), chat_template_path=str(good)) is None
    assert processor.chat_template == good.read_text()
    with pytest.raises(FamilyError, match=r"policy family 'nope' .* is not registered; choose one of"):
        get_family("nope")
