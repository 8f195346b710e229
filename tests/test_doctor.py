"""`sure-vqa doctor`: the setup check before a study, on a working setup and on broken ones."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from sure_vqa.doctor import Check, run_checks
from sure_vqa.study.run import compose_study
from tests.conftest import PROJECT_ROOT, SURE_VQA
from tests.helpers.training_fixtures import write_colour_slake


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, tiny_llava_dir: Path, published_folders) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("doctor")
    write_colour_slake(root / "datasets", n_train=6)
    return {"dataset_root": root / "datasets", "experiment_root": root / "experiments", "model_path": tiny_llava_dir,
            "judge_model_path": published_folders["judge"]}


def _overrides(paths: dict[str, Path], *extra: str) -> list[str]:
    return ["grid.shifts=[slake_modality]", "grid.seeds=[123]", *(f"paths.{k}={v}" for k, v in paths.items()),
            *extra]


def _checks(paths: dict[str, Path], *extra: str) -> dict[str, Check]:
    return {c.name: c for c in run_checks(compose_study(_overrides(paths, *extra)))}


def test_a_working_setup_passes_every_check(setup) -> None:
    checks = _checks(setup)
    assert all(c.ok for c in checks.values()), [c for c in checks.values() if not c.ok]
    assert set(checks) == {"paths.dataset_root", "paths.experiment_root", "base model", "judge", "dataset SLAKE",
                           "shift SLAKE modality=X-Ray", "accelerator", "memory", "disk"}
    # the colour fixture: 6 CT + 2 X-Ray train, 2 CT val, 2 CT + 1 X-Ray test; X-Ray train questions join ood test
    assert checks["dataset SLAKE"].detail.endswith("8 train, 2 val, 3 test questions")
    assert checks["shift SLAKE modality=X-Ray"].detail == "train iid 6, val iid 2, test iid 2, test ood 3"
    assert checks["judge"].detail.startswith(f"gemma: {setup['judge_model_path']}") and "chat template" in checks["judge"].detail
    # the default grid, one seed: lora, ia3, prompt and lora without images are trained; each model with images
    # has 14 runs (iid/ood x clean, no image, blank, shuffled, 3 corruption levels), the no-image model 4, the
    # zero-shot model 4 (with and without images), most-frequent 2: 3 x 14 + 4 + 4 + 2 = 52
    assert "4 trained models" in checks["disk"].detail and "52 inference runs" in checks["disk"].detail


def test_an_original_layout_model_names_the_conversion(setup, published_folders) -> None:
    check = _checks({**setup, "model_path": published_folders["llava_med"]})["base model"]
    assert not check.ok and "original LLaVA layout (model_type=llava_mistral)" in check.detail
    assert check.fix.startswith(f"sure-vqa convert-llava-med src={published_folders['llava_med']} dst=DST")


def test_broken_paths_and_data_are_each_named_with_their_fix(setup, tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    checks = _checks({**setup, "dataset_root": tmp_path / "nowhere", "experiment_root": a_file / "experiments"})
    assert not checks["paths.dataset_root"].ok and "DATASET_ROOT_DIR" in checks["paths.dataset_root"].fix
    assert not checks["paths.experiment_root"].ok and "is a file, not a folder" in checks["paths.experiment_root"].detail
    assert not checks["dataset SLAKE"].ok and "does not exist" in checks["dataset SLAKE"].detail
    assert checks["base model"].ok and checks["judge"].ok


def test_an_empty_ood_split_and_a_judge_without_template_fail(setup, tmp_path: Path) -> None:
    judge = tmp_path / "judge"
    shutil.copytree(setup["judge_model_path"], judge)
    config = json.loads((judge / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (judge / "tokenizer_config.json").write_text(json.dumps(config))
    (judge / "chat_template.jinja").unlink(missing_ok=True)
    checks = _checks({**setup, "judge_model_path": judge}, "grid.shifts=[{dataset: SLAKE, data_shift: modality, "
                     "ood_value: MRI}]")
    assert not checks["judge"].ok and "has no chat template" in checks["judge"].detail
    shift = checks["shift SLAKE modality=MRI"]
    assert not shift.ok and "MRI" in shift.detail


def _doctor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*SURE_VQA, "doctor", *args], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)


def _marks(table: str, row_start: str) -> list[str]:
    """The ✓/!/✗ of each row of the doctor's table whose check name starts so."""
    return [next(token for token in line.split() if token in ("✓", "!", "✗"))
            for line in table.splitlines() if line.startswith(row_start)]


def test_exit_codes(setup, published_folders) -> None:
    good = _doctor(*_overrides(setup, "grid.methods=[lora]"))
    assert good.returncode == 0, good.stdout + good.stderr
    # the fixture's ood test split has a handful of questions: the shift passes with a warning (min 100)
    assert good.stdout.rstrip().endswith("all checks passed (1 with a warning: !)")
    assert _marks(good.stdout, "shift SLAKE") == ["!"]  # a split at the minimum: test_a_small_ood_split_...
    bad = _doctor(*_overrides({**setup, "model_path": published_folders["llava_med"]}, "grid.methods=[lora]"))
    assert bad.returncode == 1
    assert "✗" in bad.stdout and "sure-vqa convert-llava-med" in bad.stdout and "checks failed" in bad.stdout
    unknown = _doctor(*_overrides(setup, "grid.no_such_key=1"))
    assert unknown.returncode == 2 and unknown.stderr.startswith("error: ")


@pytest.mark.slow
def test_the_demo_setup_passes(tmp_path: Path) -> None:
    from sure_vqa.demo.run import prepare

    prepare(tmp_path / "demo_run")
    done = _doctor("demo=true", f"out={tmp_path / 'demo_run'}")
    assert done.returncode == 0, done.stdout + done.stderr
    # one check per shift of the demo's grid (two), besides paths, data, models, judge, accelerator, memory, disk
    # the ood test splits hold 125 (X-Ray) and 437 (the swap) questions: above the minimum of 100, no warning
    # (the threshold itself: test_exit_codes and test_a_small_ood_split_passes_with_a_warning_that_names_the_minimum)
    assert done.stdout.count("✓") == 10 and "✗" not in done.stdout and done.stdout.rstrip().endswith("passed")
    assert _marks(done.stdout, "shift demo") == ["✓", "✓"]
    assert done.stdout.count("shift demo modality=") == 2


def test_a_small_ood_split_passes_with_a_warning_that_names_the_minimum(tmp_path: Path) -> None:
    from sure_vqa.data.preflight import StudyData, check_shift
    from sure_vqa.preflight import CheckWarning
    from tests.helpers.fixtures_data import write_slake

    write_slake(tmp_path, images=False)
    data = StudyData({"paths": {"dataset_root": str(tmp_path)}})
    shift = {"dataset": "SLAKE", "data_shift": "modality", "ood_value": "X-Ray"}
    counts = data.split_counts(shift)
    assert check_shift(data, shift, min_ood_questions=counts["test ood"]).startswith("train iid")
    with pytest.raises(CheckWarning, match=f"fewer than {counts['test ood'] + 1} ood test questions") as warned:
        check_shift(data, shift, min_ood_questions=counts["test ood"] + 1)
    assert "hard to tell from chance" in warned.value.fix and "sure-vqa splits list dataset=SLAKE" in warned.value.fix
