"""Task records and loaders: normalisation and errors that name the record."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from mira_env import Task, TaskError, TaskList, load_folder, load_jsonl
from mira_env.tasks import load_hf_dataset, load_image, normalize_image, resolve_tasks
from tests.mira_env.helpers import gradient_image, write_magicbrush


@pytest.fixture()
def dataset(tmp_path):
    (tmp_path / "images").mkdir()
    gradient_image().save(tmp_path / "images" / "a.png")
    gradient_image(offset=50).save(tmp_path / "images" / "b.png")
    records = [
        {"id": "a", "instruction": "make the sky pink", "image": "images/a.png", "atomic_instructions": ["x"]},
        {"complex_instruction": "add a moon", "source_image": "images/b.png", "difficulty": 3,
         "trajectory": [{"instruction": "add a moon", "image": "images/a.png"}]},
    ]
    (tmp_path / "tasks.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    return tmp_path


def test_load_jsonl_reads_both_field_conventions(dataset):
    tasks = load_jsonl(dataset / "tasks.jsonl")
    assert [t.id for t in tasks] == ["a", "tasks-2"]
    assert tasks[1].instruction == "add a moon" and tasks[1].metadata == {"difficulty": 3}
    assert tasks[1].atomic_instructions == ("add a moon",)
    assert tasks.get("a").load_source().size == (48, 40)


@pytest.mark.parametrize("line, message", [
    ('{"id": "x", "image": "images/a.png"}', r"tasks.jsonl:1: missing instruction"),
    ('{"id": "x", "instruction": "go"}', r"tasks.jsonl:1: missing image"),
    ('{"id": "x", "instruction": "go", "image": "images/a.png", "variants": 5}',
     r"tasks.jsonl:1: field 'variants' must be a list of strings, got 5 \(type int\)"),
    ("not json", r"tasks.jsonl:1: not valid JSON"),
    ("[1, 2]", r"tasks.jsonl:1: expected a JSON object"),
])
def test_malformed_jsonl_records_name_file_and_line(dataset, line, message):
    (dataset / "tasks.jsonl").write_text(line + "\n")
    with pytest.raises(TaskError, match=message):
        load_jsonl(dataset / "tasks.jsonl")


def test_missing_corrupt_and_escaping_images_name_the_record(dataset):
    (dataset / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    cases = {
        "missing": ("images/none.png", "does not exist"),
        "corrupt": ("images/broken.png", "cannot read image"),
        "escape": ("../outside.png", "outside the dataset root"),
    }
    gradient_image().save(dataset.parent / "outside.png")
    for task_id, (path, message) in cases.items():
        task = Task(id=task_id, instruction="edit", image_path=path, root=str(dataset))
        with pytest.raises(TaskError, match=rf"task '{task_id}': .*{message}"):
            task.load_source()


@pytest.mark.parametrize("mode", ["RGBA", "LA", "L", "P", "I;16", "I", "F", "1", "CMYK"])
def test_image_modes_are_normalised_to_rgb(mode, tmp_path):
    base = np.linspace(0, 65535 if mode.startswith("I") else 255, 12 * 10).reshape(10, 12)
    if mode in ("I;16", "I"):
        image = Image.fromarray(base.astype(np.uint16 if mode == "I;16" else np.int32))
        assert image.mode == mode
    elif mode == "F":
        image = Image.fromarray(base.astype(np.float32), "F")
    else:
        image = gradient_image(12, 10).convert(mode)
    out = normalize_image(image, record="t")
    assert out.mode == "RGB" and out.size == (12, 10)
    if mode in ("I;16", "I", "F"):
        array = np.asarray(out)
        assert array.min() == 0 and array.max() == 255  # scaled to 8 bit, not clipped


def test_rgba_is_composited_over_white():
    image = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert normalize_image(image).getpixel((0, 0)) == (255, 255, 255)


def test_sixteen_bit_png_round_trip(tmp_path):
    array = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    image = Image.fromarray(array)
    assert image.mode == "I;16"
    image.save(tmp_path / "deep.png")
    out = load_image(tmp_path / "deep.png", record="deep")
    assert out.mode == "RGB" and np.asarray(out).max() > 200


def test_pixel_limit_names_the_record(tmp_path):
    gradient_image(100, 100).save(tmp_path / "big.png")
    with pytest.raises(TaskError, match=r"task 'big': .*100x100 pixels, over the limit of 5000"):
        Task(id="big", instruction="x", image_path="big.png", root=str(tmp_path)).load_source(max_pixels=5000)
    with pytest.raises(TaskError, match="over the limit"):
        normalize_image(gradient_image(100, 100), max_pixels=10)


def test_load_folder_with_sidecars_and_metadata(tmp_path):
    gradient_image().save(tmp_path / "cat.png")
    (tmp_path / "cat.txt").write_text("give the cat a hat\n")
    tasks = load_folder(tmp_path)
    assert [(t.id, t.instruction) for t in tasks] == [("cat", "give the cat a hat")]
    gradient_image().save(tmp_path / "dog.jpg")
    with pytest.raises(TaskError, match=r"image 'dog.jpg' .* has no instruction: write it to 'dog.txt'"):
        load_folder(tmp_path)
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"file_name": "dog.jpg", "instruction": "add a bone"}))
    tasks = load_folder(tmp_path)
    assert [(t.id, t.instruction) for t in tasks] == [("dog", "add a bone")]
    assert tasks[0].load_source().size == (48, 40)


def test_load_hf_dataset_saved_to_disk(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({
        "source_image": [gradient_image(), gradient_image(offset=90)],
        "edit": ["add a hat", "remove the hat"],
    }).cast_column("source_image", datasets.Image())
    ds.save_to_disk(str(tmp_path / "ds"))
    tasks = load_hf_dataset(tmp_path / "ds")
    assert [t.instruction for t in tasks] == ["add a hat", "remove the hat"]
    assert tasks[1].load_source().size == (48, 40)
    with pytest.raises(TaskError, match="no instruction column 'caption'"):
        load_hf_dataset(tmp_path / "ds", instruction_column="caption")
    assert len(resolve_tasks(str(tmp_path / "ds"))) == 2


def test_task_list_and_task_validation():
    task = Task(id="a", instruction="x", image=gradient_image())
    with pytest.raises(TaskError, match="duplicate task id 'a'"):
        TaskList([task, task])
    with pytest.raises(TaskError, match="needs an image or an image_path"):
        Task(id="b", instruction="x")
    with pytest.raises(TaskError, match="instruction must be a non-empty str"):
        Task(id="b", instruction="  ", image=gradient_image())
    with pytest.raises(TaskError, match=r"tasks=3 \(type int\)"):
        resolve_tasks(3)


def test_a_magicbrush_shaped_file_loads_with_source_target_and_ids(tmp_path):
    tasks = resolve_tasks(str(write_magicbrush(tmp_path)))
    assert [t.id for t in tasks] == ["100-t1", "101-t1"]
    assert tasks[0].instruction == "put a hat on person 0"
    assert tasks[1].load_target().size == (48, 40)
    assert np.array_equal(np.asarray(tasks[0].load_source()), np.asarray(Image.open(tmp_path / "0_source.png")))


def test_a_datasets_folder_with_benchmark_columns_loads(tmp_path):
    datasets = pytest.importorskip("datasets")
    rng = np.random.default_rng(1)
    images = [Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)) for _ in range(2)]
    table = datasets.Dataset.from_dict({"img_id": ["a", "b"], "source_img": images, "target_img": images[::-1],
                                        "instruction": ["x", "y"]},
                                       features=datasets.Features({"img_id": datasets.Value("string"),
                                                                   "source_img": datasets.Image(),
                                                                   "target_img": datasets.Image(),
                                                                   "instruction": datasets.Value("string")}))
    table.save_to_disk(str(tmp_path / "ds"))
    tasks = resolve_tasks(str(tmp_path / "ds"))
    assert [t.id for t in tasks] == ["a", "b"]
    assert np.array_equal(np.asarray(tasks[0].load_target()), np.asarray(images[1]))



def test_our_field_names_win_over_benchmark_aliases(tmp_path):
    gradient_image().save(tmp_path / "a.png")
    record = {"image": "a.png", "source_img": "missing.png", "instruction": "x", "img_id": 3}
    (tmp_path / "t.jsonl").write_text(json.dumps(record) + "\n")
    (task,) = load_jsonl(tmp_path / "t.jsonl")
    assert task.id == "3" and task.image_path == "a.png"


def test_non_utf8_files_name_the_file_and_line(tmp_path):
    (tmp_path / "tasks.jsonl").write_bytes(b'{"id": "a", "instruction": "ok", "image": "a.png"}\n'
                                           b'{"id": "b", "instruction": "caf\xe9"}\n')
    with pytest.raises(TaskError, match=r"^tasks.jsonl:2: not UTF-8 text \(byte 0xe9 at column 32\); save the file "
                                        r"as UTF-8$"):
        load_jsonl(tmp_path / "tasks.jsonl")
    (tmp_path / "folder").mkdir()
    gradient_image().save(tmp_path / "folder" / "x.png")
    (tmp_path / "folder" / "x.txt").write_bytes(b"caf\xe9")
    with pytest.raises(TaskError, match=r"instruction file .*x.txt': not UTF-8 text \(byte at offset 3\)"):
        load_folder(tmp_path / "folder")


def test_a_utf8_bom_and_deep_json_are_answered(tmp_path):
    gradient_image().save(tmp_path / "a.png")
    (tmp_path / "bom.jsonl").write_bytes(b'\xef\xbb\xbf{"id": "a", "instruction": "\xe6\x8a\x8a", "image": "a.png"}\n')
    assert load_jsonl(tmp_path / "bom.jsonl")[0].instruction == "\u628a"
    (tmp_path / "deep.jsonl").write_text("[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(TaskError, match=r"^deep.jsonl:1: "):
        load_jsonl(tmp_path / "deep.jsonl")


def test_a_bad_datasets_folder_is_named(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "dataset_info.json").write_text("{not json")
    with pytest.raises(TaskError, match=r"dataset '.*broken' cannot be read as a Hugging Face dataset"):
        load_hf_dataset(tmp_path / "broken")
    with pytest.raises(TaskError, match=r"dataset '.*missing' does not exist"):
        load_hf_dataset(tmp_path / "missing")


def test_exif_orientation_is_applied_on_load(tmp_path):
    wide = Image.new("RGB", (40, 20), "red")
    wide.paste(Image.new("RGB", (10, 20), "blue"), (0, 0))  # blue stripe on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    wide.save(tmp_path / "photo.jpg", exif=exif, quality=95)
    loaded = load_image(tmp_path / "photo.jpg")
    assert loaded.size == (20, 40)  # upright: as viewers show it
    top = np.asarray(loaded)[2, 10]
    assert top[2] > 150 and top[0] < 100  # the blue stripe is now on top


def test_a_records_folder_resolves_to_its_records(tmp_path):
    """``mira export`` / ``mira data build`` output folders are task sets as they are (``--tasks <folder>``)."""
    from mira_env.records import write_records
    from mira_env.shapes.export import oracle_record
    from mira_env.shapes.generator import ShapesTaskGenerator

    generator = ShapesTaskGenerator(split="test")
    records = [oracle_record(generator[i]) for i in range(2)]
    write_records(records, tmp_path / "export")
    tasks = resolve_tasks(tmp_path / "export")
    assert len(tasks) == 2
    assert [tasks[i].instruction for i in range(2)] == [r.complex_instruction for r in records]
