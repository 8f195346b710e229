"""The study recipe: the grid it expands to, the stage configs it builds, cells that run the real stages and skip
what is done, and (slow) a whole small study on the tiny LLaVA, in one process and as a Hydra multirun."""

import json
import os
import subprocess

import pandas as pd
import pytest

from sure_vqa import naming, runs
from sure_vqa.config import CONFIG_DIR, ConfigError
from sure_vqa.study import run as study
from sure_vqa.study.grid import RunSettings, model_runs
from sure_vqa.study.report import render
from tests.conftest import PROJECT_ROOT, SURE_VQA
from tests.helpers.fixtures_data import write_slake
from tests.helpers.study_fixtures import SLAKE_SMALL

TRADITIONAL = "metric_type=[traditional_metrics]"


def compose(tmp_path, *overrides):
    return study.compose_study([f"paths.dataset_root={tmp_path / 'data'}", f"paths.experiment_root={tmp_path / 'exp'}",
                                *overrides])


def test_grid_expands_shift_method_seed_and_baselines(tmp_path):
    cfg = compose(tmp_path, "grid.shifts=[slake_modality,ovqa_question_type,slake_modality_swap]",
                  "grid.methods=[lora,ia3]", "grid.seeds=[123,124]", "grid.train_no_image_methods=[lora]")
    cells = [(c.dataset, c.data_shift, c.ood_value if isinstance(c.ood_value, str) else list(c.ood_value), c.method,
              c.seed, c.train_no_image) for c in study.grid_cells(cfg)]
    per_shift = [("lora", 123, False), ("lora", 124, False), ("ia3", 123, False), ("ia3", 124, False),
                 ("lora", 123, True), ("lora", 124, True), ("pretrained", 123, False), ("most_frequent", 123, False)]
    shifts = [("SLAKE", "modality", "X-Ray"), ("OVQA", "question_type", "Organ System"),
              ("SLAKE", "modality", ["CT", "MRI"])]
    assert cells == [(*shift, *cell) for shift in shifts for cell in per_shift]


def test_control_shifts_keep_only_clean_runs_elsewhere(tmp_path):
    cfg = compose(tmp_path, "grid.shifts=[slake_modality,slake_modality_swap]", "grid.methods=[lora]",
                  "grid.seeds=[123]", "grid.train_no_image_methods=[lora]", "grid.baselines=[pretrained]",
                  "grid.control_shifts=[slake_modality]", "runs.corruptions=[low]")
    cells = list(study.grid_cells(cfg))
    assert [(c.ood_value if isinstance(c.ood_value, str) else "swap", c.method, c.train_no_image) for c in cells] == [
        ("X-Ray", "lora", False), ("X-Ray", "lora", True), ("X-Ray", "pretrained", False),
        ("swap", "lora", False), ("swap", "pretrained", False)]
    conditions = [[(spec.split, spec.no_image, spec.image_control, spec.corruption is not None)
                   for spec in model_runs(RunSettings.from_config(c["runs"]), c.method, c.train_no_image)]
                  for c in cells]
    # on the control shift: clean, no image, blank, shuffled, one corruption (iid and ood each); the zero-shot
    # model also without images
    assert len(conditions[0]) == 10 and len(conditions[2]) == 4
    assert conditions[3] == conditions[4] == [("iid", False, None, False), ("ood", False, None, False)]
    with pytest.raises(ConfigError, match="grid.control_shifts entry='ovqa_question_type' is not valid; valid "
                                          "values: slake_modality, slake_modality_swap"):
        list(study.grid_cells(compose(tmp_path, "grid.shifts=[slake_modality,slake_modality_swap]",
                                      "grid.control_shifts=[ovqa_question_type]")))


@pytest.mark.parametrize(("override", "message"), [
    ("grid.methods=[lora,qlora]", "grid.methods entry='qlora' is not valid"),
    ("grid.shifts=[slake_modaliti]", "'slake_modaliti' is not a file in config/shift/"),
    ("grid.baselines=[zero_shot]", "grid.baselines entry='zero_shot' is not valid"),
])
def test_bad_grid_entries_are_config_errors(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        list(study.grid_cells(compose(tmp_path, override)))


def test_inference_runs_of_each_kind_of_model(tmp_path):
    cfg = compose(tmp_path, "runs.corruptions=[low,{probabilities:{blur:1,brightness:0,noise:0},"
                            "strength:{blur:high,brightness:low,noise:low}}]")
    trained = model_runs(RunSettings.from_config(cfg["runs"]), "lora", train_no_image=False)
    assert len(trained) == 2 * (1 + 1 + 2 + 2)  # iid/ood × (clean, no image, blank, shuffled, two corruptions)
    assert trained[-1].corruption.as_maps() == ({"blur": 1.0, "brightness": 0.0, "noise": 0.0},
                                                {"blur": "high", "brightness": "low", "noise": "low"})
    without_images = model_runs(RunSettings.from_config(cfg["runs"]), "lora", train_no_image=True)
    assert [(s.split, s.no_image) for s in without_images] == [("iid", False), ("ood", False), ("iid", True),
                                                               ("ood", True)]
    assert len(model_runs(RunSettings.from_config(cfg["runs"]), "pretrained")) == 4
    with pytest.raises(ConfigError, match="runs.corruptions entry='extreme' is not valid"):
        RunSettings.from_config(compose(tmp_path, "runs.corruptions=[extreme]")["runs"])


def test_stage_configs_agree_on_the_model_folder(tmp_path):
    cfg = compose(tmp_path, "shift=ovqa_question_type", "seed=124", "finetune.lora.rank=8")
    train_cfg = study.stage_config(study.TRAIN_CONFIG, cfg, {"model_type": "lora", "no_image": True},
                                   {"train": {"max_steps": 3}})
    inference_cfg = study.stage_config(study.INFERENCE_CONFIG, cfg, {"model_type": "lora", "train_no_image": True,
                                                                     "split": "ood"}, {})
    expected = tmp_path / "exp" / "llava-OVQA_train_iid_question_type_OrganSystem_no_image-finetune_lora_rank8_lr3e-4_seed124"
    assert runs.model_dir(train_cfg, training=True) == runs.model_dir(inference_cfg) == expected
    assert train_cfg.train.max_steps == 3
    with pytest.raises(ConfigError, match="stages setting for train/training_defaults"):
        study.stage_config(study.TRAIN_CONFIG, cfg, {}, {"train": {"max_stepz": 3}})


def test_most_frequent_cell_runs_evaluates_and_then_skips(tmp_path):
    write_slake(tmp_path / "data", files=SLAKE_SMALL)
    cfg = compose(tmp_path, "method=most_frequent", TRADITIONAL)
    first = study.run_cell(cfg)
    assert [outcome for _, outcome in first.steps] == ["done", "done", "done"]
    model_dir = naming.most_frequent_dir(tmp_path / "exp", "SLAKE_train_iid_modality_X-Ray")
    for split in ("iid", "ood"):
        folder = naming.eval_dir(model_dir, f"SLAKE_test_{split}_modality_X-Ray")
        for name in (naming.TEST_RESULTS_FILE, naming.OPEN_METRICS_FILE, naming.CLOSED_METRICS_FILE):
            assert (folder / name).is_file()
    iid_open = json.loads((naming.eval_dir(model_dir, "SLAKE_test_iid_modality_X-Ray") /
                           naming.OPEN_METRICS_FILE).read_text())
    # iid open questions: "CT" for "CT" (exact), "Large" for "Small" (no token shared): exact match 1 and 0.
    assert iid_open[0]["avg_exact_match_score"] == pytest.approx(0.5)
    again = study.run_cell(cfg)
    assert all(outcome.startswith("skipped") for _, outcome in again.steps)
    other_seed = study.run_cell(compose(tmp_path, "method=most_frequent", "seed=124", TRADITIONAL))
    assert other_seed.steps == [("most_frequent", "skipped (seed-independent: runs in the cell with seed=123)")]
    html = study.run_report(cfg)
    summary = pd.read_csv(html.parent / render.REPORT_SUMMARY_CSV)
    assert set(summary["label"]) == {"most frequent answer"}


def test_cell_settings_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="method='qlora' is not valid"):
        study.run_cell(compose(tmp_path, "method=qlora"))
    with pytest.raises(ConfigError, match="train_no_image=true only applies to trained methods"):
        study.run_cell(compose(tmp_path, "method=pretrained", "train_no_image=true"))
    with pytest.raises(ConfigError, match="paths.experiment_root"):
        study.run_study(study.compose_study(["paths.experiment_root=null"]))


# --- the whole study on the tiny model (slow) --------------------------------------------------------

FAST_STAGES = ["+stages.train.train.max_steps=2", "+stages.train.train.batch_size=4",
               "+stages.train.train.per_device_batch_size=2", "+stages.train.train.dataloader_num_workers=0",
               "+stages.inference.max_new_tokens=3", "+stages.inference.dtype=float32"]


@pytest.fixture
def colour_data(tmp_path):
    from tests.helpers.training_fixtures import write_colour_slake

    write_colour_slake(tmp_path / "data")
    return tmp_path


def _files(root):
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file() and "report" not in p.parts}


@pytest.mark.slow
def test_small_study_runs_every_step_and_a_rerun_does_nothing(colour_data, tiny_llava_dir):
    tmp_path = colour_data
    cfg = compose(tmp_path, f"paths.model_path={tiny_llava_dir}", "grid.methods=[lora]", "grid.seeds=[123]",
                  "grid.train_no_image_methods=[lora]", "runs.corruptions=[low]", TRADITIONAL, *FAST_STAGES)
    reports = study.run_study(cfg, progress=False)
    assert len(reports) == 4  # lora, lora without images, pretrained, most frequent
    root = tmp_path / "exp"
    missing = pd.read_csv(naming.report_dir(root) / render.REPORT_MISSING_CSV)
    # Everything the grid asks for is there; only the declared swap shift (SLAKE modality=CT+MRI) was not run.
    assert list(missing["what"]) == ["iid/ood swap"]
    summary = pd.read_csv(naming.report_dir(root) / render.REPORT_SUMMARY_CSV)
    assert set(summary["label"]) == {
        "lora_rank16_lr3e-4", "zero-shot (pretrained)", "most frequent answer", "zero-shot (pretrained) · no image at test",
        "lora_rank16_lr3e-4 · no image at test", "lora_rank16_lr3e-4 · no image in training",
        "lora_rank16_lr3e-4 · no image in training and test", "lora_rank16_lr3e-4 · blank image",
        "lora_rank16_lr3e-4 · shuffled image"}
    f1 = summary[(summary["metric"] == "f1_score")]
    assert f1["iid_mean"].between(0, 1).all() and f1["ood_mean"].between(0, 1).all()
    corruptions = pd.read_csv(naming.report_dir(root) / render.REPORT_CORRUPTION_CSV)
    assert set(corruptions["strength"]) == {"none", "low"}
    before = _files(root)
    again = study.run_study(cfg, progress=False)
    assert all(outcome.startswith(("skipped", "done")) for r in again for _, outcome in r.steps)
    assert not [step for r in again for step, outcome in r.steps if outcome == "done"]
    assert _files(root) == before  # nothing was written again

    # a finished run's answers change (as after deleting test_results.json and rerunning with other settings):
    # that run alone is scored again, and its metrics rows carry the new answers
    changed = root / "SLAKE" / "pretrained" / naming.EVAL_DIR / "SLAKE_test_iid_modality_X-Ray"
    rows = json.loads((changed / naming.TEST_RESULTS_FILE).read_text())
    rows[0]["pred"] = "a new answer"
    (changed / naming.TEST_RESULTS_FILE).write_text(json.dumps(rows))
    before = _files(root)
    third = study.run_study(cfg, progress=False)
    rescored = [(r.cell, step) for r in third for step, outcome in r.steps if outcome == "rescored"]
    assert rescored == [("SLAKE modality=X-Ray pretrained seed 123", "evaluate SLAKE_test_iid_modality_X-Ray")]
    assert not [step for r in third for step, outcome in r.steps if outcome == "done"]
    metrics = json.loads((changed / naming.OPEN_METRICS_FILE).read_text())
    assert next(r for r in metrics[1:] if r["qid"] == rows[0]["qid"])["pred"] == "a new answer"
    rewritten = {p for p, mtime in _files(root).items() if before.get(p) != mtime}
    assert rewritten == {changed / naming.OPEN_METRICS_FILE, changed / naming.CLOSED_METRICS_FILE}


@pytest.mark.slow
def test_multirun_with_the_submitit_local_launcher_ends_with_the_report(colour_data, tiny_llava_dir):
    tmp_path = colour_data
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    command = [*SURE_VQA, "study", "-m", "hydra/launcher=submitit_local",
               "method=pretrained,most_frequent", "seed=123,124", f"paths.dataset_root={tmp_path / 'data'}",
               f"paths.experiment_root={tmp_path / 'exp'}", f"paths.model_path={tiny_llava_dir}",
               f"hydra.sweep.dir={tmp_path / 'multirun'}", TRADITIONAL, *FAST_STAGES[-2:]]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = sorted((tmp_path / "multirun").glob("[0-9]*"))
    assert len(jobs) == 4  # one folder per job, run by submitit in its own process
    html = naming.report_dir(tmp_path / "exp") / render.REPORT_HTML
    assert f"report: {html}" in done.stdout
    summary = pd.read_csv(html.parent / render.REPORT_SUMMARY_CSV)
    assert {"zero-shot (pretrained)", "most frequent answer"} <= set(summary["label"])
    assert (summary.drop_duplicates("label")["seeds"] == "-").all()


def test_slurm_preset_composes_with_the_study():
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):  # with the hydra node itself
        cfg = hydra_compose(config_name=study.STUDY_CONFIG, return_hydra_config=True,
                            overrides=["hydra/launcher=sure_vqa_slurm", "hydra.launcher.partition=gpu", "method=ia3"])
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.max_num_timeout, launcher.signal_delay_s) == (
        "gpu", 1, 3, 120)
    assert cfg.hydra.callbacks.report._target_ == "sure_vqa.study.run.ReportCallback"
