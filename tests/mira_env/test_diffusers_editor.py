"""DiffusersEditor on tiny random pipelines of every preset, loaded through from_pretrained by path."""

from __future__ import annotations

import importlib
import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

pytest.importorskip("diffusers")

import mira_env  # noqa: F401 - registers the gymnasium ids
from mira_env import ConfigError, EditorError, Task
from mira_env.editors import make_editor
from mira_env.editors.diffusers_editor import DiffusersEditor, DiffusersEditorConfig, working_size
from mira_env.editors.presets import PRESETS, get_preset, resolve_preset
from mira_env.tiny.pipelines import TINY_PRESETS, build_tiny_pipeline
from tests.mira_env.conftest import TINY_EDIT_AREA, TINY_STEPS
from tests.mira_env.helpers import gradient_image


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from intra-op threads, and on a shared 2-core box spinning OpenMP
    threads slow them 5-20x; run this module's pipelines on one thread and restore the setting."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def count_calls(monkeypatch):
    """Wrap the real pipeline class's ``__call__`` with a counter that records each call's kwargs."""

    def install(editor):
        calls: list[dict] = []
        cls = type(editor.pipeline)
        original = cls.__call__

        def counted(self, *args, **kwargs):
            calls.append(kwargs)
            return original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__call__", counted)
        return calls

    return install


# ---------------------------------------------------------------------------------------------- tiny presets
@pytest.mark.parametrize("preset", TINY_PRESETS)
def test_local_folder_resolves_preset_from_model_index(preset, tiny_diffusers_editor):
    editor = tiny_diffusers_editor(preset)
    assert editor.preset.name == preset
    assert type(editor.pipeline).__name__ == PRESETS[preset].pipeline_class
    assert editor.info.name == f"diffusers/{preset}"
    assert editor.info.extras["device"] == "cpu" and editor.device == "cpu"
    assert editor.info.max_batch == (PRESETS[preset].max_batch or 1_000_000)


@pytest.mark.parametrize("preset", TINY_PRESETS)
def test_batch_of_two_is_one_pipeline_call_per_max_batch(preset, tiny_diffusers_editor, count_calls):
    editor = tiny_diffusers_editor(preset)
    calls = count_calls(editor)
    image = gradient_image(64, 64)
    outputs = editor.edit([image, image], ["make it red", "add a hat"], [1, 2])
    expected_calls = math.ceil(2 / editor.info.max_batch)  # 1; QwenImageEditPlus takes one prompt per call
    assert len(calls) == expected_calls
    assert sum(len(call["prompt"]) for call in calls) == 2
    assert [len(call["generator"]) for call in calls] == [len(call["prompt"]) for call in calls]
    assert all(call["num_inference_steps"] == TINY_STEPS for call in calls)
    assert len(outputs) == 2


@pytest.mark.parametrize("preset", TINY_PRESETS)
def test_per_sample_seeds_are_reproducible(preset, tiny_diffusers_editor):
    editor = tiny_diffusers_editor(preset)
    image = gradient_image(64, 64)
    first = editor.edit([image, image], ["make it red", "make it red"], [11, 12])
    again = editor.edit([image, image], ["make it red", "make it red"], [11, 12])
    swapped = editor.edit([image, image], ["make it red", "make it red"], [12, 11])
    assert np.array_equal(pixels(first[0]), pixels(again[0]))
    assert np.array_equal(pixels(first[1]), pixels(again[1]))
    assert np.abs(pixels(first[0]) - pixels(first[1])).mean() > 1.0  # different seeds, different images
    # the seed follows the sample, not its position (batched float math may move a pixel by one level)
    assert np.abs(pixels(first[0]) - pixels(swapped[1])).max() <= 2
    assert np.abs(pixels(first[1]) - pixels(swapped[0])).max() <= 2


@pytest.mark.parametrize("preset", TINY_PRESETS)
def test_outputs_are_rgb_at_the_input_size(preset, tiny_diffusers_editor):
    editor = tiny_diffusers_editor(preset)
    source = gradient_image(72, 56).convert("RGBA")
    (output,) = editor.edit([source], ["turn the sky green"], [0])
    assert output.mode == "RGB"
    assert output.size == source.size
    assert np.abs(pixels(output) - pixels(source.convert("RGB"))).mean() > 1.0


@pytest.mark.parametrize("preset", TINY_PRESETS)
def test_gymnasium_episode_and_check_env(preset, tiny_pipeline_path):
    editor = DiffusersEditor(str(tiny_pipeline_path(preset)), num_inference_steps=TINY_STEPS,
                             max_area=TINY_EDIT_AREA, device="cpu")
    task = Task(id="t0", instruction="make the square red, then add a hat", image=gradient_image(64, 64))
    env = gym.make("mira/ImageEdit-v0", editor=editor, tasks=[task], height=32, width=32, max_steps=2)
    obs, info = env.reset(seed=3)
    obs, reward, terminated, truncated, info = env.step("make the square red")
    assert info["editor_error"] is None
    assert obs["current"].shape == (32, 32, 3)
    assert not np.array_equal(obs["current"], obs["source"])
    assert env.unwrapped.current_image.size == (64, 64)
    obs, reward, terminated, truncated, info = env.step("add a hat")
    assert truncated and not terminated and info["editor_error"] is None
    check_env(env.unwrapped)


def test_mixed_working_sizes_split_into_one_call_per_size_in_order(tiny_diffusers_editor, count_calls):
    editor = tiny_diffusers_editor("flux-kontext")
    calls = count_calls(editor)
    square, wide = gradient_image(64, 64), gradient_image(48, 40)
    outputs = editor.edit([square, wide, square], ["a", "b", "c"], [1, 2, 3])
    assert [len(call["prompt"]) for call in calls] == [2, 1]
    assert [(call["width"], call["height"]) for call in calls] == [
        working_size(square.size, editor.preset, editor.config), working_size(wide.size, editor.preset, editor.config)]
    assert [out.size for out in outputs] == [(64, 64), (48, 40), (64, 64)]
    alone = editor.edit([square], ["c"], [3])[0]
    assert np.abs(pixels(outputs[2]) - pixels(alone)).max() <= 2


def test_batched_env_sends_group_edits_in_one_pipeline_call(tiny_diffusers_editor, count_calls):
    from mira_env.vector import BatchedEditEnv

    editor = tiny_diffusers_editor("instruct-pix2pix")
    task = Task(id="t0", instruction="make it red", image=gradient_image(64, 64))
    envs = BatchedEditEnv(3, editor=editor, tasks=[task], height=32, width=32, max_steps=2)
    calls = count_calls(editor)
    envs.reset_group(seed=0)
    obs, rewards, terminated, truncated, infos = envs.step(["make it red", "make it blue", "add a hat"])
    assert len(calls) == 1 and len(calls[0]["prompt"]) == 3
    assert list(infos["editor_error"]) == [None, None, None]


def test_qwen_condition_area_is_capped_and_restored(tiny_diffusers_editor, monkeypatch):
    editor = tiny_diffusers_editor("qwen-image-edit")
    module = importlib.import_module(type(editor.pipeline).__module__)
    original = module.calculate_dimensions
    sizes: list[tuple[int, int]] = []
    real_preprocess = editor.pipeline.image_processor.preprocess

    def spy(image, height=None, width=None, *args, **kwargs):
        sizes.append((height, width))
        return real_preprocess(image, height, width, *args, **kwargs)

    monkeypatch.setattr(editor.pipeline.image_processor, "preprocess", spy)
    editor.edit([gradient_image(96, 64)], ["make it red"], [0])
    width, height = working_size((96, 64), editor.preset, editor.config)
    assert sizes[0] == (height, width)
    assert width * height <= TINY_EDIT_AREA < 1024 * 1024
    assert module.calculate_dimensions is original


def test_working_size_and_no_resize_to_input(tiny_pipeline_path):
    editor = DiffusersEditor(str(tiny_pipeline_path("instruct-pix2pix")), num_inference_steps=TINY_STEPS,
                             height=32, width=48, resize_to_input=False, device="cpu")
    (output,) = editor.edit([gradient_image(64, 64)], ["make it red"], [0])
    assert output.size == (48, 32)
    assert editor.info.resolution == (32, 48)


@pytest.mark.parametrize("size, preset, options, expected", [
    ((640, 480), "flux-kontext", {}, (1168, 880)),
    ((640, 480), "instruct-pix2pix", {}, (640, 480)),
    ((641, 483), "instruct-pix2pix", {}, (640, 480)),
    ((100, 100), "qwen-image-edit", {"max_area": 64 * 64}, (64, 64)),
    ((100, 50), "qwen-image-edit", {"height": 40, "width": 70}, (64, 32)),
])
def test_working_size(size, preset, options, expected):
    assert working_size(size, get_preset(preset), DiffusersEditorConfig(**options)) == expected


def test_tiny_build_is_deterministic_per_seed(tmp_path):
    first = build_tiny_pipeline("flux-kontext", tmp_path / "a", seed=0)
    second = build_tiny_pipeline("flux-kontext", tmp_path / "b", seed=0)
    other = build_tiny_pipeline("flux-kontext", tmp_path / "c", seed=1)
    weights = "transformer/diffusion_pytorch_model.safetensors"
    assert (first / weights).read_bytes() == (second / weights).read_bytes()
    assert (first / weights).read_bytes() != (other / weights).read_bytes()


# ---------------------------------------------------------------------------------------------- resolution
@pytest.mark.parametrize("name", list(PRESETS))
def test_make_editor_with_preset_name_uses_default_hub_id(name):
    editor = make_editor(name, lazy=True)
    assert isinstance(editor, DiffusersEditor)
    assert editor.model == PRESETS[name].hub_id
    assert editor.preset is PRESETS[name] and editor.pipeline is None


@pytest.mark.parametrize("hub_id, preset", [
    ("timbrooks/instruct-pix2pix", "instruct-pix2pix"),
    ("black-forest-labs/FLUX.1-Kontext-dev", "flux-kontext"),
    ("Qwen/Qwen-Image-Edit", "qwen-image-edit"),
    ("Qwen/Qwen-Image-Edit-2509", "qwen-image-edit-plus"),
])
def test_known_hub_id_resolves_preset(hub_id, preset):
    assert resolve_preset(hub_id).preset.name == preset


def test_unknown_hub_id_is_generic_until_loaded():
    resolved = resolve_preset("someone/some-edit-model")
    assert not resolved.class_known and resolved.preset.pipeline_class == "DiffusionPipeline"
    by_class = resolve_preset("someone/some-edit-model", pipeline_class="StableDiffusionImg2ImgPipeline")
    assert by_class.class_known and by_class.preset.name == "generic:StableDiffusionImg2ImgPipeline"


def test_lazy_editor_loads_at_first_edit_on_the_auto_device(tiny_pipeline_path):
    import torch

    editor = DiffusersEditor(str(tiny_pipeline_path("flux-kontext")), lazy=True, num_inference_steps=1,
                             max_area=32 * 32)
    assert editor.pipeline is None and editor.info.extras["device"] is None
    (output,) = editor.edit([gradient_image(32, 32)], ["x"], [0])
    expected_device = "cuda" if torch.cuda.is_available() else "cpu"
    assert editor.pipeline is not None and editor.info.extras["device"] == expected_device
    assert editor.pipeline.transformer.dtype == (torch.bfloat16 if expected_device == "cuda" else torch.float32)
    assert output.size == (32, 32)


@pytest.fixture(scope="module")
def tiny_img2img_path(tiny_pipeline_path, tmp_path_factory):
    """A pipeline no preset knows (StableDiffusionImg2ImgPipeline) sharing the tiny SD components."""
    import torch
    from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionInstructPix2PixPipeline, UNet2DConditionModel

    parts = StableDiffusionInstructPix2PixPipeline.from_pretrained(str(tiny_pipeline_path("instruct-pix2pix")))
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32)
    pipeline = StableDiffusionImg2ImgPipeline(
        vae=parts.vae, text_encoder=parts.text_encoder, tokenizer=parts.tokenizer, unet=unet,
        scheduler=parts.scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    path = tmp_path_factory.mktemp("img2img")
    pipeline.save_pretrained(str(path))
    return path


def test_any_image_pipeline_works_through_model_index(tiny_img2img_path, count_calls):
    editor = DiffusersEditor(str(tiny_img2img_path), num_inference_steps=2, device="cpu")
    assert editor.preset.name == "generic:StableDiffusionImg2ImgPipeline"
    calls = count_calls(editor)
    image = gradient_image(48, 40)
    first = editor.edit([image, image], ["make it red", "make it red"], [5, 6])
    again = editor.edit([image], ["make it red"], [5])
    assert len(calls) == 2 and len(calls[0]["prompt"]) == 2
    assert "guidance_scale" not in calls[0] and "negative_prompt" not in calls[0]  # the pipeline's own defaults
    assert [out.size for out in first] == [(48, 40), (48, 40)]
    assert np.abs(pixels(first[0]) - pixels(again[0])).max() <= 2
    assert np.abs(pixels(first[0]) - pixels(first[1])).mean() > 1.0


def test_pipeline_class_option_matches_model_index(tiny_img2img_path):
    editor = DiffusersEditor(str(tiny_img2img_path), pipeline_class="StableDiffusionImg2ImgPipeline", lazy=True)
    assert editor.preset.pipeline_class == "StableDiffusionImg2ImgPipeline"
    with pytest.raises(EditorError) as raised:
        DiffusersEditor(str(tiny_img2img_path), pipeline_class="FluxKontextPipeline", lazy=True)
    assert str(raised.value) == (f"{str(tiny_img2img_path)!r} holds a StableDiffusionImg2ImgPipeline "
                                 f"(model_index.json), not the FluxKontextPipeline of preset 'flux-kontext'; drop "
                                 f"preset= or fix the path")


# ---------------------------------------------------------------------------------------------- errors
PRESET_LIST = "'instruct-pix2pix', 'flux-kontext', 'qwen-image-edit', 'qwen-image-edit-plus'"


@pytest.mark.parametrize("args, kwargs, message", [
    (("x/y",), {"preset": "nope"},
     f"preset='nope' (type str) is not a known preset; choose one of {PRESET_LIST}, or pass "
     f"pipeline_class='<diffusers pipeline class name>' for another pipeline"),
    (("x/y",), {"pipeline_class": "NoSuchPipeline"},
     "pipeline_class='NoSuchPipeline' is not a diffusers pipeline class (diffusers {version}); use a class name "
     "such as 'FluxKontextPipeline' or 'StableDiffusionInstructPix2PixPipeline'"),
    (("x/y",), {"pipeline_class": "StableDiffusionPipeline"},
     "StableDiffusionPipeline.__call__ takes no 'image' argument: DiffusersEditor needs an image-editing pipeline "
     "that takes image= and prompt= (e.g. FluxKontextPipeline, QwenImageEditPipeline, "
     "StableDiffusionInstructPix2PixPipeline)"),
    (("/no/such/pipeline",), {},
     "model='/no/such/pipeline': local path does not exist; pass an existing pipeline folder or a hub id such "
     "as 'timbrooks/instruct-pix2pix'"),
    (("",), {},
     "model='' (type str) must be a preset name (instruct-pix2pix, flux-kontext, qwen-image-edit, "
     "qwen-image-edit-plus), a hub id such as 'timbrooks/instruct-pix2pix' or a local pipeline folder"),
    (("flux-kontext",), {"preset": "qwen-image-edit"},
     "model='flux-kontext' names a preset, but preset='qwen-image-edit' was also given; pass one"),
    (("flux-kontext",), {"image_guidance_scale": 1.5},
     "image_guidance_scale=1.5 was given, but FluxKontextPipeline.__call__ has no 'image_guidance_scale' "
     "argument; drop it"),
])
def test_construction_errors(args, kwargs, message):
    import diffusers

    with pytest.raises(EditorError) as raised:
        DiffusersEditor(*args, lazy=True, **kwargs)
    assert str(raised.value) == message.replace("{version}", diffusers.__version__)


@pytest.mark.parametrize("kwargs, message", [
    ({"height": 64}, "height=64 and width=None must be given together (or neither; use max_area to keep the "
                     "input's aspect ratio)"),
    ({"height": 64, "width": 64, "max_area": 4096},
     "height/width (64x64) and max_area=4096 both set the working size; pass one of them"),
    ({"torch_dtype": "fp8"},
     "torch_dtype='fp8' (type str) is not one of: 'auto', 'float32', 'float16', 'bfloat16'"),
    ({"cpu_offload": True, "device": "cpu"},
     "cpu_offload=True moves models between the CPU and an accelerator; with device='cpu' there is nothing to "
     "offload: drop cpu_offload or pick device='cuda'"),
    ({"num_inference_steps": 0}, "num_inference_steps=0 (type int) must be a positive int or None"),
    ({"max_batch": True}, "max_batch=True (type bool) must be a positive int or None"),
    ({"guidance_scale": -1.0}, "guidance_scale=-1.0 (type float) must be a finite number >= 0 or None"),
    ({"call_kwargs": {"prompt": "x"}},
     "call_kwargs sets ['prompt'], which DiffusersEditor passes itself; remove them"),
])
def test_config_errors(kwargs, message):
    with pytest.raises(ConfigError) as raised:
        DiffusersEditor("instruct-pix2pix", lazy=True, **kwargs)
    assert str(raised.value) == message


def test_folder_errors(tmp_path, tiny_pipeline_path):
    with pytest.raises(EditorError) as raised:
        DiffusersEditor(str(tmp_path), lazy=True)
    assert str(raised.value) == (f"model={str(tmp_path)!r} is a folder without model_index.json; point it at a "
                                 f"folder written by DiffusionPipeline.save_pretrained (or a hub snapshot)")
    folder = str(tiny_pipeline_path("instruct-pix2pix"))
    with pytest.raises(EditorError) as raised:
        DiffusersEditor(folder, preset="flux-kontext", lazy=True)
    assert str(raised.value) == (f"{folder!r} holds a StableDiffusionInstructPix2PixPipeline (model_index.json), "
                                 f"not the FluxKontextPipeline of preset 'flux-kontext'; drop preset= or fix the path")


@pytest.mark.parametrize("images, texts, seeds, message", [
    (1, ["a", "b"], [0], "edit() needs equally long lists; got 1 images, 2 instructions, 1 seeds"),
    (1, ["a"], ["0"], "edit(): seeds[0]='0' (type str) must be an int"),
    (0, [], [], None),
])
def test_edit_validates_batches(images, texts, seeds, message, tiny_diffusers_editor):
    editor = tiny_diffusers_editor("flux-kontext")
    batch = [gradient_image(32, 32)] * images
    if message is None:
        assert editor.edit(batch, texts, seeds) == []
        return
    with pytest.raises(EditorError) as raised:
        editor.edit(batch, texts, seeds)
    assert str(raised.value) == message


def test_build_tiny_pipeline_rejects_unknown_preset(tmp_path):
    with pytest.raises(ConfigError) as raised:
        build_tiny_pipeline("step1x-edit", tmp_path)
    assert str(raised.value) == ("preset='step1x-edit' (type str) is not one of: 'instruct-pix2pix', "
                                 "'flux-kontext', 'qwen-image-edit', 'qwen-image-edit-plus'")
