"""Split files: caching and rebuilding, backups, validation errors, and the command line (on the SLAKE fixture)."""

import json
import os
import subprocess

import pytest

from sure_vqa import cli, naming
from sure_vqa.config import ConfigError, DataError
from sure_vqa.data import splits
from sure_vqa.data.splits import check_shift, split_records
from tests.conftest import PROJECT_ROOT, SURE_VQA
from tests.helpers.fixtures_data import SLAKE_FILES, ids, slake_row, write_slake

SHIFT = ("modality", "X-Ray")
NAME = "SLAKE_test_ood_modality_X-Ray"


@pytest.fixture
def root(tmp_path):
    write_slake(tmp_path, images=False)
    return tmp_path


def _state(path):
    return path.stat().st_mtime_ns, path.read_bytes()


def test_a_split_file_is_built_once_and_read_back_identically(root):
    built = split_records(root, "SLAKE", "test", "ood", *SHIFT)
    path = naming.split_file(root, "SLAKE", NAME)
    before = _state(path)
    again = split_records(root, "SLAKE", "test", "ood", *SHIFT)
    assert again == built
    assert _state(path) == before
    assert naming.split_fingerprint_file(root, "SLAKE", NAME).is_file()


def test_a_raw_file_that_changes_rebuilds_the_split_file(root):
    split_records(root, "SLAKE", "test", "ood", *SHIFT)
    files = {
        **SLAKE_FILES,
        "test.json": [
            *SLAKE_FILES["test.json"],
            slake_row(37, 9, "Is this an X-Ray?", "Yes", "CLOSED", "Modality"),
        ],
    }
    write_slake(root, files=files, images=False)
    assert ids(split_records(root, "SLAKE", "test", "ood", *SHIFT)) == ["32", "33", "36", "37", "6", "7", "9"]


def test_a_raw_file_that_is_only_touched_does_not_rebuild(root):
    split_records(root, "SLAKE", "test", "ood", *SHIFT)
    path = naming.split_file(root, "SLAKE", NAME)
    before = _state(path)
    raw = root / "SLAKE" / "test.json"
    os.utime(raw, ns=(raw.stat().st_atime_ns, raw.stat().st_mtime_ns + 10**9))
    split_records(root, "SLAKE", "test", "ood", *SHIFT)
    assert _state(path) == before
    recorded = json.loads(naming.split_fingerprint_file(root, "SLAKE", NAME).read_text())
    assert {e["file"]: e["mtime_ns"] for e in recorded["inputs"]}["test.json"] == raw.stat().st_mtime_ns


def test_a_new_rule_version_rebuilds(root, monkeypatch):
    split_records(root, "SLAKE", "test", "ood", *SHIFT)
    fingerprint = naming.split_fingerprint_file(root, "SLAKE", NAME)
    monkeypatch.setattr(splits, "SPLIT_RULES_VERSION", splits.SPLIT_RULES_VERSION + 1)
    split_records(root, "SLAKE", "test", "ood", *SHIFT)
    assert json.loads(fingerprint.read_text())["version"] == splits.SPLIT_RULES_VERSION


def test_other_arguments_rebuild_the_same_file(root):
    first = split_records(root, "SLAKE", "train", "sample", seed=1)
    again = split_records(root, "SLAKE", "train", "sample", seed=2)
    assert sorted(ids(first)) == sorted(ids(again))  # the file is smaller than 20,000: all of it, either seed
    recorded = json.loads(naming.split_fingerprint_file(root, "SLAKE", "SLAKE_train_sample").read_text())
    assert recorded["arguments"]["sample"] == {"seed": 2, "size": 20_000, "rule": "pandas-DataFrame.sample"}


@pytest.mark.parametrize("content", ["not json at all", '[{"id": "32"}]'])
def test_a_split_file_not_written_here_is_kept_before_it_is_rebuilt(root, content):
    path = naming.split_file(root, "SLAKE", NAME)
    path.parent.mkdir(parents=True)
    path.write_text(content)
    assert ids(split_records(root, "SLAKE", "test", "ood", *SHIFT)) == ["32", "33", "36", "6", "7", "9"]
    backups = list((path.parent / naming.SPLIT_BACKUP_DIR).glob(f"{NAME}.*.json"))
    assert [b.read_text() for b in backups] == [content]


def test_an_edited_split_file_is_kept_before_it_is_rebuilt(root):
    split_records(root, "SLAKE", "test", "ood", *SHIFT)
    path = naming.split_file(root, "SLAKE", NAME)
    edited = path.read_text().replace('"Yes"', '"No"', 1)
    path.write_text(edited)
    assert split_records(root, "SLAKE", "test", "ood", *SHIFT)[0].answer == "Yes"
    assert [b.read_text() for b in (path.parent / naming.SPLIT_BACKUP_DIR).iterdir()] == [edited]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("FOO", "test", "ood", *SHIFT),
            "dataset='FOO' is not a known dataset; valid values: MIMIC, OVQA, PathVQA, SLAKE, VQA-RAD, demo; or describe the dataset in .*FOO/dataset.yaml",
        ),
        (
            ("SLAKE", "test", "ood", "colour", "red"),
            "data_shift='colour' is not a field of the SLAKE records; valid fields: answer_type, base_type, "
            "content_type, location, modality",
        ),
        (
            ("SLAKE", "test", "ood", "modality", "xray"),
            r"ood_value='xray' matches no SLAKE record's modality; valid values: CT \(9\), MRI \(4\), X-Ray \(7\)",
        ),
        (("SLAKE", "test", "ood", "modality", ["X-Ray", "PET"]), "ood_value='PET' matches no SLAKE record"),
        (("SLAKE", "test", "ood", "modality", ["CT", "MRI", "X-Ray"]), "makes every SLAKE record ood"),
        (("SLAKE", "test", "ood", None, None), "data_shift is not set"),
        (("SLAKE", "test", "ood", "modality", None), "ood_value is not set"),
        (
            ("SLAKE", "train", "ood", *SHIFT),
            "split=ood with mod=train is not valid: train and val splits are always iid",
        ),
        (("SLAKE", "dev", "iid", *SHIFT), "mod='dev' is not valid; valid values: train, val, test"),
        (("SLAKE", "test", "half", *SHIFT), "split='half' is not valid; valid values: iid, ood, all, sample"),
    ],
)
def test_bad_settings_name_the_setting_and_what_is_valid(root, args, message):
    with pytest.raises(ConfigError, match=message):
        split_records(root, *args)


def test_odd_raw_entries_are_counted_and_a_broken_file_changes_nothing(root, caplog):
    assert "31" in [r.qid for r in split_records(root, "SLAKE", "test", "all")]
    split_records(root, "SLAKE", "test", "ood", *SHIFT)
    path = naming.split_file(root, "SLAKE", NAME)
    raw = root / "SLAKE" / "test.json"
    rows = json.loads(raw.read_text())
    assert rows[1]["qid"] == 31
    for change, kind in ((lambda row: row.pop("answer"), "lacks answer"),
                         (lambda row: row.update(answer=None), "no answer"),
                         (lambda row: row.update(answer="2", answer_type="MAYBE"), "answer type neither OPEN nor CLOSED")):
        changed = json.loads(json.dumps(rows))
        change(changed[1])
        raw.write_text(json.dumps(changed))
        caplog.clear()
        with caplog.at_level("WARNING"):
            kept = split_records(root, "SLAKE", "test", "all")
        # the odd entry is left out and named; the other test questions stay
        assert [r.qid for r in kept] == [str(row["qid"]) for row in rows if row["qid"] != 31
                                         and row.get("q_lang", "en") == "en"]
        assert f"SLAKE: 1 row left out ({kind}), e.g. 31" in caplog.messages
    before = _state(path)
    raw.write_text("[{")
    with pytest.raises(DataError, match="test.json is not valid JSON"):
        split_records(root, "SLAKE", "test", "ood", *SHIFT)
    assert _state(path) == before


def test_other_languages_shared_ids_and_an_empty_file_are_reported(root, caplog):
    rows = json.loads((root / "SLAKE" / "train.json").read_text())
    other = sum(row.get("q_lang", "en") != "en" for row in rows)
    test_rows = json.loads((root / "SLAKE" / "test.json").read_text())
    rows[0]["qid"] = test_rows[0]["qid"]  # the same qid in the train and the test file
    (root / "SLAKE" / "train.json").write_text(json.dumps(rows))
    (root / "SLAKE" / "validate.json").write_text("[]")
    with caplog.at_level("WARNING"):
        split_records(root, "SLAKE", "train", "all")
    assert other == 2 and "SLAKE: 2 questions of train.json not in English (q_lang), left out" in caplog.messages
    assert "SLAKE: validate.json has no English question" in caplog.messages
    assert (f"SLAKE: 1 qid occurs in more than one raw file, e.g. {test_rows[0]['qid']} (train/test)"
            in caplog.messages)


def test_missing_folders_and_repeated_qids_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="SLAKE does not exist"):
        split_records(tmp_path, "SLAKE", "train", "all")
    (tmp_path / "SLAKE").mkdir()
    with pytest.raises(DataError, match=r"SLAKE/train.json not found; the SLAKE folder must hold imgs/"):
        split_records(tmp_path, "SLAKE", "train", "all")
    files = {
        **SLAKE_FILES,
        "test.json": [*SLAKE_FILES["test.json"], slake_row(6, 9, "Again?", "Yes", "CLOSED", "Organ")],
    }
    write_slake(tmp_path, files=files, images=False)
    with pytest.raises(DataError, match=r"qid '6' occurs 2 times in split SLAKE_test_ood_modality_X-Ray"):
        split_records(tmp_path, "SLAKE", "test", "ood", *SHIFT)


def test_check_shift_validates_and_caches_the_field_summary(root):
    shift = check_shift(root, "SLAKE", *SHIFT)
    assert (shift.data_shift, shift.ood_values, shift.image_level) == ("modality", frozenset({"X-Ray"}), True)
    summary = json.loads(naming.shift_fields_file(root, "SLAKE").read_text())["summary"]
    assert summary["modality"] == [
        ["CT", {"train": 5, "val": 2, "test": 2}],
        ["MRI", {"train": 3, "test": 1}],
        ["X-Ray", {"train": 3, "val": 1, "test": 3}],
    ]
    with pytest.raises(ConfigError, match="valid values: CT"):
        check_shift(root, "SLAKE", "modality", "PET")


def test_cli_builds_every_split_file_of_a_shift(root, monkeypatch, capsys):
    monkeypatch.setenv("DATASET_ROOT_DIR", str(root))
    cli.main(["splits", "build", "dataset=SLAKE", "data_shift=modality", "ood_value=X-Ray"])
    out = capsys.readouterr().out.splitlines()
    assert out[1].split() == [
        "mod",
        "split",
        "questions",
        "open",
        "closed",
        "from",
        "train",
        "status",
        "file",
    ]
    assert [line.split()[:5] for line in out[2:]] == [
        ["train", "iid", "8", "4", "4"],
        ["val", "iid", "2", "1", "1"],
        ["test", "iid", "3", "1", "2"],
        ["test", "ood", "6", "3", "3"],
    ]
    assert out[5].split()[5:] == ["3", "built", f"{NAME}.json"]
    files = sorted(p.name for p in (root / "SLAKE" / "split_files").glob("*.json"))
    assert files == [
        f"SLAKE_{m}_{s}_modality_X-Ray.json"
        for m, s in (("test", "iid"), ("test", "ood"), ("train", "iid"), ("val", "iid"))
    ]
    cli.main(["splits", "build", "dataset=SLAKE", "split=all"])
    assert [line.split()[:3] for line in capsys.readouterr().out.splitlines()[2:]] == [
        ["train", "all", "11"],
        ["val", "all", "3"],
        ["test", "all", "6"],
    ]


def test_cli_lists_fields_values_and_counts(root, monkeypatch, capsys):
    cli.main(["splits", "list", "dataset=SLAKE", f"paths.dataset_root={root}"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("SLAKE: 20 questions (train 11, val 3, test 6)")
    # questions (images) per part, counted from the fixture's rows: CT is on xmlab1 and xmlab4 in train (5
    # questions), xmlab6 in val (2) and xmlab8 in test (2)
    assert ["modality", "yes", "CT", "5", "(2)", "2", "(1)", "2", "(1)", "9"] in [line.split() for line in lines]
    assert ["Pelvic", "Cavity", "0", "(0)", "2", "(1)", "0", "(0)", "2"] in [line.split() for line in lines]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["dataset=SLAKE", "data_shift=modality", "ood_value=PET"],
            "ood_value='PET' matches no SLAKE record",
        ),
        (["dataset=SLAKE", "shift=modality"], "Could not override 'shift'"),
        (["data_shift=modality"], "dataset is not set; valid values: MIMIC, OVQA, PathVQA, SLAKE, VQA-RAD, demo"),
        (["dataset=SLAKE", "modality"], "Error parsing override 'modality'"),
    ],
)
def test_cli_errors_exit_2(root, monkeypatch, capsys, argv, message):
    monkeypatch.setenv("DATASET_ROOT_DIR", str(root))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["splits", "build", *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_as_a_module_with_the_dataset_root_unset(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATASET_ROOT_DIR"}
    done = subprocess.run(
        [*SURE_VQA, "splits", "build", "dataset=SLAKE", "split=all"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "paths.dataset_root (set DATASET_ROOT_DIR in .env or the environment) is not set" in done.stderr


def test_record_image_path_needs_a_known_dataset(root):
    record = split_records(root, "SLAKE", "val", "all")[0]
    assert (
        splits.record_image_path(root, "SLAKE", record) == root / "SLAKE" / "imgs" / "xmlab6" / "source.jpg"
    )
    with pytest.raises(ConfigError, match="dataset='slake' is not a known dataset"):
        splits.record_image_path(root, "slake", record)
