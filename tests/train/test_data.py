"""mira_env.train.data: MIRA-Editing records -> start / continue / stop SFT samples, and the collator's loss mask."""

from __future__ import annotations

import json

import pytest

from mira_env.actions import format_action
from mira_env.agents.prompt import build_messages
from mira_env.records import write_records
from tests.train.conftest import make_record
from mira_env.train.data import DataError, SFTCollator, build_sft_samples, fill_images, record_samples


def _texts(messages):
    return " ".join(p.get("text") or "" for m in messages if isinstance(m.get("content"), list) for p in m["content"])


def test_single_turn_samples_are_start_continue_stop():
    steps = ["paint it red", "paint it blue", "paint it green"]
    record = make_record(0, steps)
    samples = record_samples(record, format="single_turn")
    assert [s["kind"] for s in samples] == ["start", "continue", "continue", "stop"]
    assert [s["completion"] for s in samples] == [format_action(x) for x in steps] + [format_action("<STOP>")]
    for k, sample in enumerate(samples):
        source, current = sample["images"]
        assert source.tobytes() == record.source_image.tobytes()
        expected = record.source_image if k == 0 else record.trajectory[k - 1].image
        assert current.tobytes() == expected.tobytes()
        # exactly the prompt VLMAgent builds for this state
        reference = build_messages(record.complex_instruction, source, expected, steps[:k])
        assert fill_images(sample["prompt"], sample["images"]) == reference
        for i, step in enumerate(steps):
            assert (f"{i + 1}. {step}" in _texts(sample["prompt"])) == (i < k)


def test_multi_turn_samples_replay_the_tool_conversation():
    steps = ["paint it red", "paint it blue"]
    record = make_record(1, steps)
    samples = record_samples(record, format="multi_turn", system_prompt="", max_steps=4)
    assert len(samples) == 3
    for k, sample in enumerate(samples):
        roles = [m["role"] for m in sample["prompt"]]
        assert roles == ["user"] + ["assistant", "tool"] * k
        assert len(sample["images"]) == 2 + k
        for i in range(k):  # the tool result after edit i carries the image after step i
            assert sample["images"][2 + i].tobytes() == record.trajectory[i].image.tobytes()
            assert sample["prompt"][1 + 2 * i]["content"][0]["text"] == format_action(steps[i])
            assert f"Edit {i + 1} of 4 applied" in _texts([sample["prompt"][2 + 2 * i]])
        assert sample["tools"] is True


def test_multi_turn_is_the_default_and_budget_defaults_to_grpos():
    record = make_record(1, ["paint it red"])
    (first, second) = record_samples(record, system_prompt="")
    assert first["tools"] is True and "Edit 1 of 5 applied" in _texts(second["prompt"])
    with pytest.raises(DataError, match="record 'rec-1' has 3 steps, over the edit budget 2; raise edit_budget"):
        record_samples(make_record(1, ["a", "b", "c"]), max_steps=2)


def test_records_from_a_folder_and_from_a_datasets_dataset(tmp_path):
    import datasets

    records = [make_record(i, ["paint it red"] * (i % 3)) for i in range(3)]
    write_records(records, tmp_path)
    from_folder = build_sft_samples(tmp_path, format="single_turn")
    assert len(from_folder) == sum(len(r.trajectory) + 1 for r in records)
    rows = [{"id": r.id, "complex_instruction": r.complex_instruction, "source_image": r.source_image,
             "trajectory": [{"instruction": s.instruction, "image": s.image} for s in r.trajectory]} for r in records]
    from_dataset = build_sft_samples(datasets.Dataset.from_list(rows), format="single_turn")
    assert [s["completion"] for s in from_dataset] == [s["completion"] for s in from_folder]
    assert [s["record_id"] for s in from_dataset] == [s["record_id"] for s in from_folder]


@pytest.mark.parametrize("mutate, message", [
    (lambda raw: raw["trajectory"][0].update(instruction="  "), "record 'bad-1': trajectory[0].instruction is empty"),
    (lambda raw: raw["trajectory"][0].update(image="images/nope.png"), "record 'bad-1': cannot load trajectory[0].image"),
    (lambda raw: raw["trajectory"][0].update(instruction="<STOP>"), "record 'bad-1': trajectory[0] is '<STOP>'"),
])
def test_malformed_records_name_the_record(tmp_path, mutate, message):
    record = make_record(0, ["paint it red"])
    record.id = "bad-1"
    path = write_records([record], tmp_path)
    raw = json.loads(path.read_text())
    mutate(raw)
    path.write_text(json.dumps(raw) + "\n")
    with pytest.raises(DataError) as info:
        build_sft_samples(tmp_path)
    assert message in str(info.value)


def test_unknown_format_is_refused():
    with pytest.raises(DataError, match="format='chat' .* is not one of: 'single_turn', 'multi_turn'"):
        record_samples(make_record(0, ["a"]), format="chat")


@pytest.mark.parametrize("sample_format", ["single_turn", "multi_turn"])
def test_collator_puts_the_loss_on_the_answer_only(tiny_path, sample_format):
    from transformers import AutoConfig, AutoProcessor

    from mira_env.agents.families import prepare_processor

    processor = AutoProcessor.from_pretrained(tiny_path)
    prepare_processor(processor, AutoConfig.from_pretrained(tiny_path))
    samples = record_samples(make_record(2, ["paint it red", "paint it blue"]), format=sample_format, system_prompt="")
    batch = SFTCollator(processor)(samples)
    assert batch["input_ids"].shape[0] == len(samples)
    image_token = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    merge = processor.image_processor.merge_size ** 2
    for row, sample in enumerate(samples):
        kept = batch["labels"][row][batch["labels"][row] != -100]
        assert processor.tokenizer.decode(kept) == sample["completion"] + processor.tokenizer.eos_token
    # every image of every sample is in pixel_values, with as many image tokens as its grid needs
    assert int((batch["input_ids"] == image_token).sum()) == int(batch["image_grid_thw"].prod(-1).sum()) // merge
    assert batch["image_grid_thw"].shape[0] == sum(len(s["images"]) for s in samples)


def _prepared(tiny_path):
    from transformers import AutoConfig, AutoProcessor

    from mira_env.agents.families import prepare_processor

    processor = AutoProcessor.from_pretrained(tiny_path)
    prepare_processor(processor, AutoConfig.from_pretrained(tiny_path))
    return processor


def test_a_trajectory_sample_trains_every_answer_in_its_own_step_context(tiny_path):
    """loss_turns='all': one sample per record whose labels are every answer; each answer token gets the
    same logits (so the same loss) as in its per-step sample, in one forward pass instead of n + 1."""
    import torch
    from transformers import AutoModelForImageTextToText

    processor = _prepared(tiny_path)
    record = make_record(3, ["paint it red", "paint it blue"])
    steps = record_samples(record, system_prompt="", max_steps=3)
    (trajectory,) = record_samples(record, system_prompt="", max_steps=3, loss_turns="all")
    assert trajectory["all_turns"] is True and trajectory["kind"] == "stop" and len(trajectory["images"]) == 4
    collator = SFTCollator(processor)
    eos = processor.tokenizer.eos_token
    full = collator([trajectory])
    kept = full["labels"][0][full["labels"][0] != -100]
    assert processor.tokenizer.decode(kept) == "".join(s["completion"] + eos for s in steps)
    model = AutoModelForImageTextToText.from_pretrained(tiny_path).eval()
    with torch.no_grad():
        whole = model(**{k: v for k, v in full.items() if k != "labels"}).logits[0]
        positions = (full["labels"][0] != -100).nonzero().flatten().tolist()
        got = []
        for sample in steps:
            batch = collator([sample])
            logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits[0]
            mine = (batch["labels"][0] != -100).nonzero().flatten()
            assert torch.equal(batch["input_ids"][0], full["input_ids"][0, : batch["input_ids"].shape[1]])
            got.append(logits[mine - 1])
    torch.testing.assert_close(torch.cat(got), whole[torch.tensor(positions) - 1], atol=1e-4, rtol=1e-4)


def test_trajectory_samples_need_multi_turn_and_a_template_that_keeps_earlier_turns(tiny_path):
    with pytest.raises(DataError, match="loss_turns='all' needs format='multi_turn'"):
        record_samples(make_record(0, ["a"]), format="single_turn", loss_turns="all")
    with pytest.raises(DataError, match="loss_turns='every' .* is not one of: 'last', 'all'"):
        record_samples(make_record(0, ["a"]), loss_turns="every")
    processor = _prepared(tiny_path)
    # a template that renders the message count up front changes every earlier turn's context
    processor.chat_template = "{{ messages | length }}" + processor.chat_template
    (sample,) = record_samples(make_record(1, ["paint it red"]), system_prompt="", loss_turns="all")
    with pytest.raises(DataError, match="renders the turns before assistant message 1 differently.*loss_turns='last'"):
        SFTCollator(processor)([sample])


def test_sft_arguments_check_loss_turns():
    from mira_env.errors import ConfigError
    from mira_env.train.sft import SFTDataArguments

    assert SFTDataArguments(loss_turns="all").loss_turns == "all"
    with pytest.raises(ConfigError, match="loss_turns='all' needs sample_format='multi_turn', got 'single_turn'"):
        SFTDataArguments(loss_turns="all", sample_format="single_turn")
    with pytest.raises(ConfigError, match="loss_turns"):
        SFTDataArguments(loss_turns="first")
