"""Nothing lost, nothing silently wrong: each bad input below ends in a one-line error that names the file, row or
setting and what is valid, exit code 2, and every file that existed is byte-identical afterwards. The stages run as
users run them (real subprocesses of the entry scripts) on the tiny LLaVA and the red/blue SLAKE fixture."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from sure_vqa import naming
from sure_vqa.evaluate.run import run_evaluation
from sure_vqa.study.run import compose
from tests.conftest import PROJECT_ROOT
from tests.helpers.processes import offline_env, run_script, script_command
from tests.helpers.training_fixtures import write_colour_slake

SHIFT = ["dataset=SLAKE", "data_shift=modality", "ood_value=X-Ray"]
PRETRAINED = ["--config-name", "inference/inference_pretrained_defaults"]
FAST = ["max_new_tokens=2", "batch_size=2", "dtype=float32"]
TRADITIONAL_ONLY = ["dataset=null", "metric_type=[traditional_metrics]", "paths.experiment_root=null"]
ROWS = [
    {"qid": "1", "question": "What colour?", "gt": "red", "pred": "red", "answer_type": "OPEN", "img_name": "a.png"},
    {"qid": "2", "question": "What colour?", "gt": "blue", "pred": "a red one", "answer_type": "OPEN",
     "img_name": "b.png"},
    {"qid": "3", "question": "Is it red?", "gt": "yes", "pred": "yes", "answer_type": "CLOSED", "img_name": "c.png"},
]


def _run(script: str, *args: str, hydra_dir: Path, read_only_root: bool = False) -> subprocess.CompletedProcess:
    return run_script(script, *args, hydra_dir=hydra_dir, read_only_root=read_only_root, timeout=600)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    return lines[0]


@pytest.fixture()
def data_root(tmp_path: Path) -> Path:
    write_colour_slake(tmp_path / "data", n_train=4)
    return tmp_path / "data"


def _paths(data_root: Path, experiments: Path, model: Path) -> list[str]:
    return [f"paths.dataset_root={data_root}", f"paths.experiment_root={experiments}", f"paths.model_path={model}"]


# --- run_eval and the result file --------------------------------------------------------------------------------


def _scored_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "eval_run"
    folder.mkdir()
    (folder / naming.TEST_RESULTS_FILE).write_text(json.dumps(ROWS))
    run_evaluation(compose("eval/metrics_eval_defaults", [f"eval_dir={folder}", *TRADITIONAL_ONLY]))
    assert (folder / naming.OPEN_METRICS_FILE).is_file()
    return folder


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([], "holds no rows; an empty result file is not scored"),
        ([*ROWS[:1], {**ROWS[1], "pred": None}, ROWS[2]], "row 1 (qid '2') has pred=null"),
        ([*ROWS, {**ROWS[0], "pred": "blue"}], "1 qids occur more than once ('1' (2 times))"),
    ],
    ids=["empty", "null-pred", "repeated-qid"],
)
def test_run_eval_refuses_a_bad_result_file_and_keeps_the_metrics(tmp_path: Path, rows, message) -> None:
    folder = _scored_folder(tmp_path)
    (folder / naming.TEST_RESULTS_FILE).write_text(json.dumps(rows))
    before = _snapshot(folder)
    error = _one_line_error(_run("run_eval.py", f"eval_dir={folder}", *TRADITIONAL_ONLY, hydra_dir=tmp_path / "h"))
    assert str(folder / naming.TEST_RESULTS_FILE) in error and message in error
    assert _snapshot(folder) == before


def test_a_changed_judge_is_refused_until_asked_to_overwrite(tmp_path: Path, published_folders) -> None:
    folder = tmp_path / "eval_run"
    folder.mkdir()
    (folder / naming.TEST_RESULTS_FILE).write_text(json.dumps(ROWS))
    judge = [f"paths.judge_model_path={published_folders['judge']}", "judge.dtype=float32", "judge.batch_size=2",
             "dataset=null", "paths.experiment_root=null"]
    run_evaluation(compose("eval/metrics_eval_defaults", [f"eval_dir={folder}", *judge, "judge.max_new_tokens=4"]))
    open_file, closed_file = naming.judge_metrics_files("gemma")
    before = _snapshot(folder)

    error = _one_line_error(_run("run_eval.py", f"eval_dir={folder}", *judge, "judge.max_new_tokens=5",
                                 hydra_dir=tmp_path / "h"))
    assert f"{folder / open_file} was scored by 'gemma-2-9b-it (hf, greedy, max_new_tokens=4)' with prompt open.v1"\
        in error and "these settings give 'gemma-2-9b-it (hf, greedy, max_new_tokens=5)'" in error
    assert "set another judge.name" in error and "overwrite_judge_files=true" in error
    assert _snapshot(folder) == before

    run_evaluation(compose("eval/metrics_eval_defaults", [f"eval_dir={folder}", *judge, "judge.max_new_tokens=5",
                                                          "overwrite_judge_files=true"]))
    for name in (open_file, closed_file):
        backups = list(folder.glob(f"{name}.*.bak"))
        assert len(backups) == 1 and backups[0].read_bytes() == before[name]
        summary = json.loads((folder / name).read_text())[0]
        assert summary["judge_identity"] == "gemma-2-9b-it (hf, greedy, max_new_tokens=5)"


# --- settings that used to give tracebacks -----------------------------------------------------------------------


def test_bad_values_and_unknown_keys_exit_2(tmp_path: Path, data_root: Path, tiny_llava_dir: Path) -> None:
    paths = _paths(data_root, tmp_path / "experiments", tiny_llava_dir)
    hydra = tmp_path / "h"
    seed = _one_line_error(_run("inference.py", *SHIFT, *paths, "seed=abc", hydra_dir=hydra))
    assert "seed='abc' is not valid; it must be an integer" in seed
    seed = _one_line_error(_run("run_eval.py", *SHIFT, *paths, "seed=abc", "metric_type=[traditional_metrics]",
                                hydra_dir=hydra))
    assert "seed='abc' is not valid; it must be an integer" in seed
    unknown = _one_line_error(_run("inference.py", *SHIFT, *paths, "no_such_key=1", hydra_dir=hydra))
    assert "Could not override 'no_such_key'" in unknown  # Hydra's own message
    # ... which suggests `+no_such_key=1`: Hydra then accepts the key, and the stage would ignore it
    for script in ("inference.py", "train.py", "run_eval.py"):
        added = _one_line_error(_run(script, *SHIFT, *paths, "+no_such_key=1", hydra_dir=hydra))
        assert "+no_such_key=1 adds a setting 'no_such_key' that " in added and "does not read" in added, script
        assert "its settings are: " in added and "data_shift" in added
    # corruption settings are checked even while corruption is off
    strength = _one_line_error(_run("inference.py", *PRETRAINED, *SHIFT, *paths, "corruption_strength.noise=extreme",
                                    hydra_dir=hydra))
    assert "corruption_strength.noise='extreme' is not valid; valid values: low, medium, high" in strength
    assert not (tmp_path / "experiments").exists()


def test_a_read_only_experiment_root_is_named_before_any_model_loads(tmp_path: Path, data_root: Path,
                                                                     tiny_llava_dir: Path) -> None:
    experiments = tmp_path / "experiments"
    experiments.mkdir()
    paths = _paths(data_root, experiments, tiny_llava_dir)
    eval_run = tmp_path / "scored"
    eval_run.mkdir()
    (eval_run / naming.TEST_RESULTS_FILE).write_text(json.dumps(ROWS))
    experiments.chmod(0o555)
    eval_run.chmod(0o555)
    try:
        results = [
            _run("train.py", *SHIFT, *paths, "train.max_steps=1", hydra_dir=tmp_path / "h1", read_only_root=True),
            _run("inference.py", *PRETRAINED, *SHIFT, *paths, "split=iid", *FAST, hydra_dir=tmp_path / "h2",
                 read_only_root=True),
            _run("run_eval.py", f"eval_dir={eval_run}", *TRADITIONAL_ONLY, hydra_dir=tmp_path / "h3",
                 read_only_root=True),
        ]
    finally:
        experiments.chmod(0o755)
        eval_run.chmod(0o755)
    for result in results:
        error = _one_line_error(result)
        assert "cannot be written (Permission denied)" in error
        assert "Loading weights" not in result.stderr  # refused before the model loaded
    assert list(experiments.iterdir()) == [] and _snapshot(eval_run) == {naming.TEST_RESULTS_FILE: json.dumps(
        ROWS).encode()}


def test_missing_and_unreadable_images_are_listed_before_the_model_loads(tmp_path: Path, data_root: Path,
                                                                         tiny_llava_dir: Path) -> None:
    images = data_root / "SLAKE" / "imgs"
    (images / "xmlab2001" / "source.png").unlink()
    (images / "xmlab1001" / "source.png").unlink()  # a val image: not in this run, not listed
    (images / "xmlab2002" / "source.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    experiments = tmp_path / "experiments"
    result = _run("inference.py", *PRETRAINED, *SHIFT, *_paths(data_root, experiments, tiny_llava_dir), "split=iid",
                  *FAST, hydra_dir=tmp_path / "h")
    error = _one_line_error(result)
    assert ("2 of the 2 image files of SLAKE_test_iid_modality_X-Ray are missing or unreadable, asked about by 2 "
            "of its 2 questions") in error
    assert f"qid 2001: {images / 'xmlab2001' / 'source.png'} does not exist" in error
    assert f"qid 2002: {images / 'xmlab2002' / 'source.png'} cannot be read as an image" in error
    assert "Loading weights" not in result.stderr and "1001" not in error
    assert not list(experiments.rglob(naming.TEST_RESULTS_FILE))


# --- two runs of one stage at once -------------------------------------------------------------------------------


def _wait_for(predicate, process: subprocess.Popen, log: Path) -> None:
    """Polls until `predicate()` (the process must still be running); no fixed sleeps."""
    import time

    deadline = time.monotonic() + 300
    while not predicate():
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.slow
def test_two_inference_processes_on_one_run(tmp_path: Path, data_root: Path, tiny_llava_dir: Path) -> None:
    """The first holds the run (frozen with SIGSTOP while it holds it, so the overlap is certain); a second exits
    naming it; a third with wait_for_lock=true waits, then skips the run the first finished."""
    paths = _paths(data_root, tmp_path / "experiments", tiny_llava_dir)
    eval_dir = tmp_path / "eval"
    args = [*PRETRAINED, *SHIFT, *paths, "split=ood", *FAST, f"eval_dir={eval_dir}"]
    logs = {name: tmp_path / f"{name}.log" for name in ("first", "second", "third")}
    holder = eval_dir / naming.run_lock_holder_name("inference")

    first = subprocess.Popen(script_command("inference.py", *args, hydra_dir=tmp_path / "h1"), cwd=PROJECT_ROOT,
                             env=offline_env(), stdout=logs["first"].open("w"), stderr=subprocess.STDOUT)
    try:
        _wait_for(holder.is_file, first, logs["first"])
        first.send_signal(signal.SIGSTOP)
        second = _run("inference.py", *args, hydra_dir=tmp_path / "h2")
        error = _one_line_error(second)
        assert f"another inference run of {eval_dir} is in progress (pid {first.pid} on" in error
        assert "wait_for_lock=true" in error
        third = subprocess.Popen(script_command("inference.py", *args, "wait_for_lock=true", hydra_dir=tmp_path / "h3"),
                                 cwd=PROJECT_ROOT, env=offline_env(), stdout=logs["third"].open("w"),
                                 stderr=subprocess.STDOUT)
        _wait_for(lambda: "waiting for the inference run" in logs["third"].read_text(), third, logs["third"])
        first.send_signal(signal.SIGCONT)
        assert first.wait(timeout=300) == 0, logs["first"].read_text()[-3000:]
        assert third.wait(timeout=300) == 0, logs["third"].read_text()[-3000:]
    finally:
        for process in (first,):
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
    assert "skipping:" in logs["third"].read_text() and "is finished (same model and settings)" in \
        logs["third"].read_text()
    rows = json.loads((eval_dir / naming.TEST_RESULTS_FILE).read_text())
    assert sorted(r["qid"] for r in rows) == ["2003", "5", "6"]  # the ood test split: test X-Ray + train X-Ray
    assert not list(eval_dir.glob(naming.PREDICTION_LOG_GLOB)) and not holder.exists()


def test_training_and_evaluation_of_a_held_folder_are_refused(tmp_path: Path, data_root: Path,
                                                              tiny_llava_dir: Path) -> None:
    """The lock of train.py (in the experiment folder) and run_eval.py (in the eval folder), held by this test."""
    from sure_vqa.run_lock import run_lock

    experiments = tmp_path / "experiments"
    model_dir = experiments / "llava-SLAKE_train_iid_modality_X-Ray-finetune_lora_rank16_lr3e-4_seed123"
    folder = _scored_folder(tmp_path)
    before = _snapshot(folder)
    with run_lock(model_dir, "train"), run_lock(folder, "evaluation"):
        trained = _run("train.py", *SHIFT, *_paths(data_root, experiments, tiny_llava_dir), "train.max_steps=1",
                       hydra_dir=tmp_path / "h1")
        evaluated = _run("run_eval.py", f"eval_dir={folder}", *TRADITIONAL_ONLY, hydra_dir=tmp_path / "h2")
    error = _one_line_error(trained)
    assert f"another train run of {model_dir} is in progress (pid {os.getpid()} on" in error
    assert "Loading weights" not in trained.stderr
    assert f"another evaluation run of {folder} is in progress (pid {os.getpid()} on" in _one_line_error(evaluated)
    assert _snapshot(folder) == before
    assert sorted(p.name for p in model_dir.iterdir()) == [naming.run_lock_name("train")]
