"""Datasets described by a file (dataset.yaml, or a built-in description): VQA-RAD and PathVQA in each published
layout, a `datasets` save_to_disk folder and an in-house CSV; expected split ids derived by hand from the rules
(docs/method.md#shifts-and-splits: train/val iid only; an image-level field's ood train rows join the ood test
split; the ood test split lists the test part's rows first)."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from pathlib import Path

import pytest
import yaml

from sure_vqa.config import ConfigError, DataError
from sure_vqa.data.described import derived_qid
from sure_vqa.data.records import CLOSED, OPEN
from sure_vqa.data.splits import DatasetSplits, split_records
from tests.helpers.published_datasets import (
    VQA_RAD_HUB_TEST,
    VQA_RAD_HUB_TRAIN,
    image_bytes,
    write_pathvqa_hub,
    write_pathvqa_release,
    write_vqa_rad_hub,
    write_vqa_rad_release,
)


def ids(records) -> list[str]:
    return [record.qid for record in records]


def sha1_qid(part: str, position: int, question: str) -> str:
    """The documented id of a row without one (docs/data.md#dataset-yaml), computed here from its definition."""
    return f"{part}-{position}-{hashlib.sha1(question.encode()).hexdigest()[:8]}"


def test_vqa_rad_as_released(tmp_path: Path) -> None:
    write_vqa_rad_release(tmp_path)
    # train part: phrase_type freeform/para -> qids 1, 2, 3, 5, 8; test part: test_* -> 4, 6, 7; HEAD: 1, 2, 7, 8
    assert ids(split_records(tmp_path, "VQA-RAD", "train", "iid", "image_organ", "HEAD")) == ["3", "5"]
    assert ids(split_records(tmp_path, "VQA-RAD", "test", "iid", "image_organ", "HEAD")) == ["4", "6"]
    # the organ is fixed per image, so the train part's HEAD rows join the ood test split, after the test part's
    assert ids(split_records(tmp_path, "VQA-RAD", "test", "ood", "image_organ", "HEAD")) == ["7", "1", "2", "8"]
    records = {r.qid: r for r in split_records(tmp_path, "VQA-RAD", "train", "all")}
    first = records["1"]
    assert (first.image, first.answer, first.answer_type, first.categories) == (
        "VQA_RAD Image Folder/synpic54610.jpg", "Yes", CLOSED, ["yes", "no"])
    assert records["8"].fields == {"image_organ": "HEAD", "question_type": "PRES, POS", "answer_type": "CLOSED"}
    # the question type is a shift too; the test part has no MODALITY question but 7
    assert ids(split_records(tmp_path, "VQA-RAD", "test", "ood", "question_type", "MODALITY")) == ["7"]
    with pytest.raises(ConfigError, match="split=ood with mod=val"):
        split_records(tmp_path, "VQA-RAD", "val", "ood", "image_organ", "HEAD")


def test_the_hub_fixture_is_what_the_hubs_own_loader_reads_as_images(tmp_path: Path) -> None:
    """The fixture's shards carry the hub's schema: `datasets`' parquet loader sees an Image feature."""
    import datasets

    folder = write_vqa_rad_hub(tmp_path)
    loaded = datasets.load_dataset("parquet", data_files={"test": str(folder / "data" / "test-*.parquet")},
                                   split="test", cache_dir=str(tmp_path / "hf_cache"))
    assert isinstance(loaded.features["image"], datasets.Image)
    assert loaded.column_names == ["image", "question", "answer"]
    assert [row["question"] for row in loaded] == [q for q, _, _ in VQA_RAD_HUB_TEST]
    assert loaded[0]["image"].size == (12, 12)  # decoded by the loader, as a PIL image


def test_vqa_rad_from_the_hub(tmp_path: Path) -> None:
    folder = write_vqa_rad_hub(tmp_path)
    train = split_records(tmp_path, "VQA-RAD", "train", "all")
    assert ids(train) == [sha1_qid("train", i, q) for i, (q, _, _) in enumerate(VQA_RAD_HUB_TRAIN)]
    assert [r.answer_type for r in train] == [CLOSED, OPEN, OPEN]  # yes/no answers are closed
    # the answer type is the only shift the hub's columns support
    assert ids(split_records(tmp_path, "VQA-RAD", "test", "ood", "answer_type", "CLOSED")) == [
        sha1_qid("test", 0, VQA_RAD_HUB_TEST[0][0])]
    # the image bytes were written once each, named by their content: 4 distinct images for 5 rows
    stored = sorted((folder / "images").iterdir())
    assert len(stored) == 4 and all(p.suffix == ".jpg" for p in stored)
    assert (folder / train[1].image).read_bytes() == (folder / split_records(
        tmp_path, "VQA-RAD", "test", "all")[0].image).read_bytes()  # the same picture in train and test
    assert train[0].img_name == "synpic54610.jpg"
    before = {p: p.stat().st_mtime_ns for p in stored}
    DatasetSplits(tmp_path, "VQA-RAD").records()  # a second read writes nothing
    assert {p: p.stat().st_mtime_ns for p in sorted((folder / "images").iterdir())} == before
    with pytest.raises(ConfigError, match="data_shift='image_organ' is not a field"):
        split_records(tmp_path, "VQA-RAD", "test", "ood", "image_organ", "HEAD")
    reader = DatasetSplits(tmp_path, "VQA-RAD").reader
    assert "no organ column" in reader.unavailable_fields["image_organ"]


def test_pathvqa_as_released_and_from_the_hub_have_the_same_ids(tmp_path: Path) -> None:
    write_pathvqa_release(tmp_path / "released")
    write_pathvqa_hub(tmp_path / "hub")
    released = split_records(tmp_path / "released", "PathVQA", "test", "all")
    hub = split_records(tmp_path / "hub", "PathVQA", "test", "all")
    assert ids(released) == ids(hub) == [sha1_qid("test", 0, "does the image show nodular tumor?"),
                                         sha1_qid("test", 1, "what does this image show?")]
    assert released[0].image == "images/test/test_0003.jpg" and hub[0].image.startswith("images/")
    assert [r.answer_type for r in released] == [CLOSED, OPEN]
    assert len(split_records(tmp_path / "hub", "PathVQA", "val", "all")) == 1  # the hub's "validation" shard
    train_open = split_records(tmp_path / "released", "PathVQA", "train", "iid", "answer_type", "CLOSED")
    assert [r.answer for r in train_open] == ["in the canals of hering"]


def test_a_pickle_that_asks_for_code_is_refused(tmp_path: Path) -> None:
    folder = write_pathvqa_release(tmp_path)

    class Exploit:
        def __reduce__(self):
            return (print, ("a pickle can run code",))

    (folder / "qas" / "val" / "val_qa.pkl").write_bytes(pickle.dumps([{"image": Exploit()}]))
    with pytest.raises(DataError, match=r"the pickle asks for builtins.print; only plain lists, dicts"):
        split_records(tmp_path, "PathVQA", "val", "all")


def _describe(folder: Path, description: dict) -> None:
    (folder / "dataset.yaml").write_text(yaml.safe_dump(description), encoding="utf-8")


def test_a_save_to_disk_folder_written_by_datasets(tmp_path: Path) -> None:
    import datasets
    from PIL import Image

    folder = tmp_path / "inhouse"
    features = datasets.Features({"image": datasets.Image(), "question": datasets.Value("string"),
                                  "answer": datasets.Value("string"), "qid": datasets.Value("string"),
                                  "answer_type": datasets.Value("string"), "scanner": datasets.Value("string")})
    parts = {"train": [("a1", "is there a nodule?", "yes", "CLOSED", "A"), ("a2", "what organ?", "lung", "OPEN", "B")],
             "test": [("b1", "is it normal?", "no", "CLOSED", "B"), ("b2", "which side?", "left", "OPEN", "A")]}
    for part, rows in parts.items():
        table = datasets.Dataset.from_dict({
            "image": [Image.new("RGB", (8, 8), (i * 60, 0, 0)) for i in range(len(rows))],
            "question": [r[1] for r in rows], "answer": [r[2] for r in rows], "qid": [r[0] for r in rows],
            "answer_type": [r[3] for r in rows], "scanner": [r[4] for r in rows]}, features=features)
        table.save_to_disk(str(folder / "hf" / part))
    _describe(folder, {"format": "hf_disk", "parts": {"train": "hf/train", "test": "hf/test"},
                       "columns": {"qid": "qid", "answer_type": "answer_type"},
                       "shift_fields": ["scanner"], "image_level_fields": ["scanner"]})
    assert ids(split_records(tmp_path, "inhouse", "train", "iid", "scanner", "B")) == ["a1"]
    assert ids(split_records(tmp_path, "inhouse", "test", "ood", "scanner", "B")) == ["b1", "a2"]
    record = split_records(tmp_path, "inhouse", "test", "all")[0]
    assert (folder / record.image).is_file() and record.image.startswith("images/")


def _write_csv_set(tmp_path: Path) -> Path:
    folder = tmp_path / "clinic"
    (folder / "img").mkdir(parents=True)
    for name, colour in (("p1.png", (0, 0, 0)), ("p2.png", (255, 0, 0)), ("p3.png", (0, 255, 0))):
        (folder / "img" / name).write_bytes(image_bytes(colour, "PNG"))
    (folder / "train.csv").write_text(
        "question,answer,image,site,lang\n"
        "is there a fracture?,Yes,p1.png,north,en\n"
        "what bone is shown?,femur,p2.png,south,en\n"
        "which side?,,p2.png,south,en\n"               # no answer: left out and counted
        "is it displaced?,no,missing.png,north,en\n"   # its image is not there: left out and counted
        "est-ce cassé ?,oui,p1.png,north,fr\n",        # not English: not kept by the filter
        encoding="utf-8")
    (folder / "test.csv").write_text("question,answer,image,site,lang\n"
                                     "is the bone broken?,yes,p3.png,north,en\n"
                                     "what joint is this?,knee,p3.png,south,en\n", encoding="utf-8")
    _describe(folder, {"description": "an in-house set", "parts": {"train": "train.csv", "test": "test.csv"},
                       "images": "img", "answer_type_rule": "yes_no", "filter": {"lang": "en"},
                       "shift_fields": ["site"], "image_level_fields": []})
    return folder


def test_an_in_house_csv_without_ids_or_answer_types(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _write_csv_set(tmp_path)
    with caplog.at_level("WARNING"):
        train = split_records(tmp_path, "clinic", "train", "all")
    # positions count every row of the part, kept or not: the French row (4) and the odd rows (2, 3) keep theirs
    assert ids(train) == [sha1_qid("train", 0, "is there a fracture?"), sha1_qid("train", 1, "what bone is shown?")]
    assert derived_qid("train", 1, "what bone is shown?") == train[1].qid
    assert [(r.answer, r.answer_type, r.image) for r in train] == [("Yes", CLOSED, "img/p1.png"),
                                                                    ("femur", OPEN, "img/p2.png")]
    lines = caplog.messages
    assert f"clinic: 1 row left out (no answer), e.g. {sha1_qid('train', 2, 'which side?')}" in lines
    assert f"clinic: 1 row left out (image not found), e.g. {sha1_qid('train', 3, 'is it displaced?')}" in lines
    assert "clinic: 1 train rows not kept by the filter ({'lang': 'en'})" in lines
    # site is not per image here: the ood test split is the test part's south rows only
    assert ids(split_records(tmp_path, "clinic", "test", "ood", "site", "south")) == [
        sha1_qid("test", 1, "what joint is this?")]
    odd = DatasetSplits(tmp_path, "clinic").records().odd
    assert dict(odd.counts) == {"no answer": 1, "image not found": 1}


def test_duplicated_qids_and_an_empty_part_are_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = _write_csv_set(tmp_path)
    (folder / "train.csv").write_text("qid,question,answer,image,lang\nq1,is it broken?,yes,p1.png,en\n"
                                      "q1,is it healed?,no,p2.png,en\n", encoding="utf-8")
    (folder / "test.csv").write_text("qid,question,answer,image,lang\n", encoding="utf-8")
    description = yaml.safe_load((folder / "dataset.yaml").read_text())
    _describe(folder, {**description, "columns": {"qid": "qid"}, "shift_fields": []})
    with caplog.at_level("WARNING"):
        records = DatasetSplits(tmp_path, "clinic").records()
    assert ids(records) == ["q1"] and records.odd.counts["duplicated qid"] == 1
    assert "clinic: 1 row left out (duplicated qid), e.g. q1" in caplog.messages
    assert "clinic: the test part has no question (test.csv)" in caplog.messages


def test_a_description_naming_what_the_data_lacks_stops_with_the_columns_there_are(tmp_path: Path) -> None:
    folder = _write_csv_set(tmp_path)
    description = yaml.safe_load((folder / "dataset.yaml").read_text())
    _describe(folder, {**description, "columns": {"question": "Question"}})
    with pytest.raises(ConfigError, match=r"dataset.yaml: columns.question names the column 'Question', which "
                                          r"train.csv lacks; its columns: question, answer, image, site, lang"):
        split_records(tmp_path, "clinic", "train", "all")
    _describe(folder, {**description, "colums": {"question": "question"}})
    with pytest.raises(ConfigError, match=r"clinic/dataset.yaml: dataset.yaml.colums is not a setting; valid settings: "
                                          r"description, format, parts"):
        split_records(tmp_path, "clinic", "train", "all")
    _describe(folder, {**description, "image_pattern": "{split}/{image}"})
    with pytest.raises(ConfigError, match=r"image_pattern='\{split\}/\{image\}' is not valid; it may use \{image\} and"):
        split_records(tmp_path, "clinic", "train", "all")
    _describe(folder, {**description, "format": "xlsx"})
    with pytest.raises(ConfigError, match=r"dataset.yaml.format='xlsx' is not valid; valid values: json, jsonl, csv"):
        split_records(tmp_path, "clinic", "train", "all")


def test_ls_lists_a_described_folder_of_the_dataset_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sure_vqa.listing import listing

    _write_csv_set(tmp_path)
    monkeypatch.setenv("DATASET_ROOT_DIR", str(tmp_path))
    assert f"  clinic   an in-house set ({tmp_path / 'clinic' / 'dataset.yaml'})" in listing(["datasets"]).splitlines()


@pytest.mark.slow
def test_a_hub_parquet_dataset_given_only_by_its_description_runs_through_every_stage(
        tiny_llava_dir: Path, tmp_path: Path) -> None:
    """train -> infer -> evaluate -> report on parquet shards laid out as the hub publishes them, described by a
    dataset.yaml alone (a scanner column as the shift)."""
    import pandas as pd

    from sure_vqa import naming
    from sure_vqa.config import compose
    from sure_vqa.evaluate.run import run_evaluation
    from sure_vqa.infer.run import run_inference
    from sure_vqa.study.report import build_report
    from sure_vqa.train.run import train_model
    from tests.helpers.published_datasets import write_hub_parquet

    folder = tmp_path / "data" / "scans"
    colours = {"red": (220, 20, 20), "green": (20, 220, 20), "blue": (20, 20, 220)}
    def rows(entries):
        return [{"image": {"bytes": image_bytes(colours[c], "PNG"), "path": f"{c}.png"}, "question": q,
                 "answer": a, "scanner": s} for q, a, c, s in entries]
    write_hub_parquet(folder / "data" / "train-00000-of-00001.parquet", rows(
        [("what colour is the image?", "red", "red", "A"), ("is the image red?", "yes", "red", "A"),
         ("what colour is the image?", "green", "green", "A"), ("is the image green?", "yes", "green", "B"),
         ("what colour is the image?", "blue", "blue", "A")]))
    write_hub_parquet(folder / "data" / "test-00000-of-00001.parquet", rows(
        [("what colour is the image?", "blue", "blue", "A"), ("is the image blue?", "yes", "blue", "B"),
         ("what colour is the image?", "red", "red", "B")]))
    _describe(folder, {"parts": {"train": "data/train-*.parquet", "test": "data/test-*.parquet"},
                       "answer_type_rule": "yes_no", "shift_fields": ["scanner"]})
    common = [f"paths.dataset_root={tmp_path / 'data'}", f"paths.experiment_root={tmp_path / 'exp'}",
              f"paths.model_path={tiny_llava_dir}", "dataset=scans", "data_shift=scanner", "ood_value=B",
              "model_type=lora"]
    outcome = train_model(compose("train/training_defaults", [
        *common, "train.max_steps=2", "train.batch_size=2", "train.per_device_batch_size=2",
        "train.save_steps=1000", "train.dataloader_num_workers=0"]))
    assert outcome.model_dir.name == "llava-scans_train_iid_scanner_B-finetune_lora_rank16_lr3e-4_seed123"
    for split in ("iid", "ood"):
        results = run_inference(compose("inference/inference_defaults", [
            *common, f"split={split}", "max_new_tokens=3", "batch_size=2", "dtype=float32"]))
        run_evaluation(compose("eval/metrics_eval_defaults", [
            *common, f"split={split}", "metric_type=[traditional_metrics]"]))
        answered = json.loads(results.read_text())
        # scanner B is ood and not per image: the test part's B rows only (positions 1 and 2)
        expected = ([sha1_qid("test", 0, "what colour is the image?")] if split == "iid" else
                    [sha1_qid("test", 1, "is the image blue?"), sha1_qid("test", 2, "what colour is the image?")])
        assert [row["qid"] for row in answered] == expected
    summary = pd.read_csv(build_report(tmp_path / "exp", progress=False).summary_csv)
    lora = summary[summary["label"] == "lora_rank16_lr3e-4"]
    assert set(lora["dataset"]) == {"scans"} and set(lora["data_shift"]) == {"scanner"}
    assert (tmp_path / "exp" / naming.REPORT_DIR).is_dir()


SLAKE_AS_DESCRIBED = {
    "format": "json", "parts": {"train": "train.json", "val": "validate.json", "test": "test.json"},
    "images": "imgs", "columns": {"qid": "qid", "image": "img_name", "answer_type": "answer_type"},
    "filter": {"q_lang": "en"}, "shift_fields": ["location", "modality", "content_type", "base_type"],
    "image_level_fields": ["location", "modality"], "question_type_field": "content_type"}


def test_slakes_split_files_are_the_same_bytes_through_its_reader_and_a_description(tmp_path: Path) -> None:
    """SLAKE's raw format expressed as a dataset.yaml gives byte-identical split files to its Python reader."""
    from sure_vqa import naming
    from sure_vqa.demo.dataset import build_demo
    from tests.helpers.fixtures_data import write_slake

    write_slake(tmp_path, "SLAKE")
    _describe(write_slake(tmp_path, "slake_described"), SLAKE_AS_DESCRIBED)
    build_demo(tmp_path / "demo")  # the demo dataset: SLAKE's format without q_lang, so no filter
    shutil.copytree(tmp_path / "demo", tmp_path / "demo_described")
    _describe(tmp_path / "demo_described", {key: value for key, value in SLAKE_AS_DESCRIBED.items() if key != "filter"})
    cases = [("SLAKE", mod, split, shift) for mod, split, shift in (
        ("train", "iid", ("modality", "X-Ray")), ("test", "ood", ("modality", "X-Ray")),
        ("test", "ood", ("content_type", "Size")), ("val", "all", (None, None)))]
    cases += [("demo", "train", "iid", ("modality", "X-Ray")), ("demo", "test", "ood", ("modality", "X-Ray"))]
    for dataset, mod, split, shift in cases:
        files = []
        for name in (dataset, f"{dataset.lower()}_described"):
            split_records(tmp_path, name, mod, split, *shift)
            files.append(naming.split_file(tmp_path, name, naming.split_name(name, mod, split, *shift)).read_bytes())
        assert files[0] == files[1] and len(files[0]) > 10


def test_split_files_are_reused_until_the_data_or_the_description_changes(tmp_path: Path) -> None:
    from sure_vqa import naming

    write_vqa_rad_hub(tmp_path)  # a built-in description: no dataset.yaml in the folder
    assert split_records(tmp_path, "VQA-RAD", "train", "all") and DatasetSplits(tmp_path, "VQA-RAD").split(
        "train", "all")[2] is False
    folder = _write_csv_set(tmp_path)
    split_records(tmp_path, "clinic", "train", "all")
    path = naming.split_file(tmp_path, "clinic", "clinic_train_all")
    assert DatasetSplits(tmp_path, "clinic").split("train", "all")[2] is False  # reused
    description = yaml.safe_load((folder / "dataset.yaml").read_text())
    _describe(folder, {**description, "filter": {"lang": ["en", "fr"]}})  # the French row is kept now
    name, records, built = DatasetSplits(tmp_path, "clinic").split("train", "all")
    assert built and len(records) == 3 and path.is_file()


def test_the_split_summary_counts_what_was_left_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sure_vqa import cli

    _write_csv_set(tmp_path)
    cli.main(["splits", "build", "dataset=clinic", f"paths.dataset_root={tmp_path}", "data_shift=site",
              "ood_value=south"])
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == ("left out while reading (the warnings above name examples): image not found 1, no answer 1")
    # train iid: the north rows kept (the fracture question); test ood: the south test row
    assert [line.split()[:3] for line in out[2:6]] == [["train", "iid", "1"], ["val", "iid", "0"],
                                                      ["test", "iid", "1"], ["test", "ood", "1"]]


def test_the_report_reads_a_described_fields_names_back_with_the_dataset_root(tmp_path: Path) -> None:
    """`body_part_left_arm`: without the description a name cannot say where the field ends (`body_part_left`
    = `arm` by the case rule); with the dataset root the report knows the field `body_part`."""
    from sure_vqa import naming, runs
    from sure_vqa.study.report.scan import scan

    folder = tmp_path / "data" / "limbs"
    folder.mkdir(parents=True)
    _describe(folder, {"parts": {"train": "t.csv"}, "answer_type_rule": "yes_no", "shift_fields": ["body_part"]})
    identity = runs.ModelIdentity(dataset="limbs", train_split="iid", data_shift="body_part", ood_value="left_arm",
                                  model_type="lora", seed=1, learning_rate=3e-4, folder_tags=("rank16",),
                                  trained_without_images=False, experiment_root=tmp_path / "exp", explicit_dir=None)
    run = runs.InferenceSpec("ood").run_name(naming.split_name("limbs", "test", "ood", "body_part", "left_arm"))
    (identity.model_dir() / naming.EVAL_DIR / run).mkdir(parents=True)
    guessed = scan(tmp_path / "exp")
    assert (guessed.models[0].identity.data_shift, guessed.models[0].identity.ood_value) == ("body_part_left", "arm")
    known = scan(tmp_path / "exp", tmp_path / "data")
    assert known.models[0].identity == identity and known.runs[0].shift.ood_value == "left_arm"
