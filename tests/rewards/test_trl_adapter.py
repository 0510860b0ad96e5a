"""The TRL reward_funcs adapter, and trl.GRPOTrainer accepting it (tiny causal LM built offline)."""

from __future__ import annotations

import json
import math

import pytest

from mira_env import IdentityEditor
from mira_env.rewards import CompositeReward
from mira_env.rewards.errors import RewardConfigError
from mira_env.rewards.pixel import PixelDistance
from mira_env.rewards.rules import FormatReward, StepCost
from mira_env.rewards.trl_adapter import TRLRewardFunction
from tests.rewards.conftest import noise_image


class InvertEditor(IdentityEditor):
    """Inverts the image: a real (trivial) editor so an edit changes pixels."""

    def edit(self, images, instructions, seeds):
        from PIL import ImageOps

        self.calls += 1
        return [ImageOps.invert(image) for image in images]


def _reward():
    return CompositeReward([FormatReward(), PixelDistance(1), StepCost(max_steps=3)], [1.0, 0.0, -0.1])


def test_adapter_reads_columns_and_edits_in_one_call():
    editor = InvertEditor()
    fn = TRLRewardFunction(_reward(), name="mira", editor=editor)
    images = [noise_image(i, 16) for i in range(3)]
    completions = ["<edit>invert it</edit>", "<think>done</think><STOP>", "garbage"]
    logged = {}
    values = fn(prompts=["p"] * 3, completions=completions, image=images, instruction=["invert"] * 3,
                log_metric=lambda k, v: logged.__setitem__(k, v))
    assert fn.__name__ == "mira" and editor.calls == 1
    assert values == pytest.approx([1.0 - 0.1, 1.0, 0.0])
    assert logged["mira/l1"] == pytest.approx((0.0 + 0.0 + _l1_inverted(images[0])) / 3, rel=1e-5)
    component = TRLRewardFunction(_reward(), component="l1", editor=InvertEditor())(
        prompts=["p"] * 3, completions=completions, image=images)
    assert component[0] == pytest.approx(_l1_inverted(images[0])) and component[1:] == [0.0, 0.0]


def _l1_inverted(image):
    import numpy as np

    a = np.asarray(image, dtype=np.float32) / 255
    return float(np.mean(np.abs((1 - a) - a)))


def test_adapter_with_conversational_completions_and_edited_column():
    images = [noise_image(i, 16) for i in range(2)]
    fn = TRLRewardFunction(FormatReward())
    values = fn(prompts=[[{"role": "user", "content": "C"}]] * 2,
                completions=[[{"role": "assistant", "content": "<edit>x</edit>"}],
                             [{"role": "assistant", "content": [{"type": "text", "text": "nope"}]}]],
                image=[[im] for im in images], edited_image=images)
    assert values == [1.0, 0.0] and fn.__name__ == "format"


def test_adapter_none_stays_none():
    fn = TRLRewardFunction(CompositeReward([FormatReward()]))
    assert fn(prompts=["p"], completions=[""], image=[noise_image(0, 8)]) == [0.0]


def test_adapter_missing_image_column():
    fn = TRLRewardFunction(FormatReward())
    with pytest.raises(RewardConfigError, match="the dataset has no 'image' column with the source images"):
        fn(prompts=["p"], completions=["x"], prompt_id=[1])


def _tiny_lm(path):
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {char: index for index, char in enumerate(bytes_to_unicode().values())}
    vocab["<|endoftext|>"] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|endoftext|>",
                                        pad_token="<|endoftext|>")
    config = Qwen2Config(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
                         eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"])
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.mark.slow
def test_grpo_trainer_accepts_adapter(tmp_path):
    from datasets import Dataset, Features, Image as ImageFeature, Value
    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    model_path = _tiny_lm(tmp_path / "lm")
    images = [noise_image(i, 16) for i in range(2)]
    dataset = Dataset.from_dict(
        {"prompt": ["Edit: make it red. Answer:", "Edit: add a hat. Answer:"], "source": images,
         "instruction": ["make it red", "add a hat"]},
        features=Features({"prompt": Value("string"), "source": ImageFeature(), "instruction": Value("string")}))
    calls = []
    adapter = TRLRewardFunction(_reward(), name="mira_composite", editor=InvertEditor(), image_column="source")

    def counting(prompts, completions, **kwargs):
        values = adapter(prompts, completions, **kwargs)
        calls.append(values)
        return values

    counting.__name__ = adapter.__name__
    args = GRPOConfig(output_dir=str(tmp_path / "out"), per_device_train_batch_size=2, num_generations=2,
                      max_completion_length=8, max_steps=1, bf16=False, use_cpu=True, report_to="none",
                      logging_steps=1, save_strategy="no", seed=0)
    trainer = GRPOTrainer(model=model_path, reward_funcs=[adapter, counting], args=args, train_dataset=dataset,
                          processing_class=AutoTokenizer.from_pretrained(model_path))
    trainer.train()
    assert calls and all(len(v) == 2 for v in calls)
    assert all(v is not None and math.isfinite(v) for batch in calls for v in batch)
    logged = {k for row in trainer.state.log_history for k in row}
    assert "rewards/mira_composite/mean" in logged


def _shapes_rows(n=2):
    """Rows of a `datasets` table of shapes-world tasks: the image column loses PIL info, the state column keeps it."""
    from datasets import Dataset, Features, Image as ImageFeature, Value

    from mira_env.editors.base import STATE_KEY
    from mira_env.editors.state import STATE_COLUMN, encode_state
    from mira_env.shapes import make_shapes_env

    env = make_shapes_env(split="train", num_tasks=n, difficulty=1)
    tasks = [env.unwrapped.tasks[i] for i in range(n)]
    sources = [t.load_source() for t in tasks]
    table = Dataset.from_dict(
        {"image": sources, STATE_COLUMN: [encode_state(s.info[STATE_KEY]) for s in sources],
         "instruction": [t.instruction for t in tasks],
         "target_scene": [json.dumps(t.metadata["target_scene"]) for t in tasks]},
        features=Features({"image": ImageFeature(), STATE_COLUMN: Value("string"), "instruction": Value("string"),
                           "target_scene": Value("string")}))
    rows = table[:]
    rows["target_scene"] = [json.loads(t) for t in rows["target_scene"]]
    return tasks, rows, env.unwrapped.editor


def test_adapter_scores_a_datasets_image_column_through_the_state_column():
    from mira_env.editors.base import STATE_KEY
    from mira_env.editors.state import STATE_COLUMN
    from mira_env.rewards.oracle import OracleReward

    tasks, rows, editor = _shapes_rows()
    assert all(STATE_KEY not in image.info for image in rows["image"])  # what datasets gives back
    fn = TRLRewardFunction(OracleReward(), editor=editor)
    values = fn(prompts=["p"] * 2, completions=["<STOP>", "<STOP>"], **rows)
    assert all(v is not None for v in values), values  # the oracle could score every row
    without = {k: v for k, v in rows.items() if k != STATE_COLUMN}
    assert fn(prompts=["p"] * 2, completions=["<STOP>", "<STOP>"], **without) == [None, None]
    assert len(tasks) == 2


class FailingEditor(IdentityEditor):
    def edit(self, images, instructions, seeds):
        raise RuntimeError("CUDA out of memory")


class ShortEditor(IdentityEditor):
    def edit(self, images, instructions, seeds):
        return list(images)[:-1]


def test_adapter_editor_errors_become_none_with_the_reason(caplog):
    import logging

    fn = TRLRewardFunction(FormatReward(), name="fmt", editor=FailingEditor())
    images = [noise_image(i, 16) for i in range(3)]
    with caplog.at_level(logging.WARNING, logger="mira_env.rewards.trl_adapter"):
        values = fn(prompts=["p"] * 3, completions=["<edit>a</edit>", "<STOP>", "<edit>b</edit>"], image=images)
    assert values == [None, 1.0, None]
    assert fn.last_errors == {0: "editor identity failed: RuntimeError: CUDA out of memory",
                              2: "editor identity failed: RuntimeError: CUDA out of memory"}
    assert "fmt: editor identity failed: RuntimeError: CUDA out of memory (2 rows scored None)" in caplog.text


@pytest.mark.parametrize("build, call, message", [
    (lambda: TRLRewardFunction(FormatReward(), editor=ShortEditor()),
     dict(completions=["<edit>a</edit>", "<edit>b</edit>"]),
     r"editor .* returned 1 images for 2 edits; an Editor returns one image per input"),
    (lambda: TRLRewardFunction(FormatReward()), dict(completions=["<STOP>"] * 2, instruction=["a"]),
     r"columns \['instruction'\] have lengths \{'instruction': 1\}, not one value per completion \(2 completions\)"),
])
def test_adapter_length_mismatches_are_clear_errors(build, call, message):
    images = [noise_image(i, 16) for i in range(2)]
    with pytest.raises(RewardConfigError, match=message):
        build()(prompts=["p"] * 2, image=images, **call)
