"""Stopped as Slurm and users stop jobs: real train.py, inference.py and run_eval.py processes get SIGTERM (or
SIGKILL) mid-run. Each keeps what it did (a checkpoint at the step it reached, the prediction log, the judge
cache), prints one line, exits 143, leaves no lock holder behind, and a rerun ends byte-identical to a run that was
never interrupted. DataLoader workers end with their parent. The graceful-stop machinery itself (second signal,
submitit's requeue hand-over) is checked in-process."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sure_vqa import graceful_stop, naming
from sure_vqa.infer.generation.prediction_log import log_files, read_rows
from sure_vqa.models.experiment_folder import is_finished, last_checkpoint
from tests.conftest import PROJECT_ROOT
from tests.helpers.inference_helpers import colour_inference_command, many_colour_questions
from tests.helpers.training_fixtures import confident_copy, train_command, write_colour_slake

SHIFT = ["dataset=SLAKE", "data_shift=modality", "ood_value=X-Ray"]  # the colour dataset's shift
EXIT_SIGTERM = 128 + signal.SIGTERM


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
            "PYTHONUNBUFFERED": "1"}


def _start(command: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=PROJECT_ROOT, env=_env(), stdout=log.open("w"), stderr=subprocess.STDOUT)


def _wait_until(predicate: Callable[[], bool], process: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    """Polls (the process must still be running): no fixed sleeps."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert process.poll() is None, f"ended before the signal could be sent:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.02)


def _stop(process: subprocess.Popen, signum: int) -> int:
    process.send_signal(signum)
    return process.wait(timeout=300)


def _one_stop_line(log: Path) -> str:
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    lines = [line for line in text.splitlines() if line.startswith("stopped by ")]
    assert len(lines) == 1, text[-3000:]
    return lines[0]


def _no_lock_holder(folder: Path) -> None:
    assert not list(folder.glob("*.holder.json")), sorted(
        p.name for p in folder.iterdir())


@pytest.mark.slow
def test_inference_stops_on_sigterm_after_the_batch_in_hand_and_resumes(tmp_path: Path, tiny_llava_dir: Path) -> None:
    data_root = many_colour_questions(tmp_path / "data", 100)
    experiments = tmp_path / "experiments"
    eval_dir = experiments / "SLAKE" / "pretrained" / naming.EVAL_DIR / "SLAKE_test_iid_modality_X-Ray"
    command = colour_inference_command(data_root, experiments, tiny_llava_dir)
    log = tmp_path / "first.log"
    process = _start(command, log)
    _wait_until(lambda: any(len(read_rows(p)) >= 3 for p in log_files(eval_dir)), process, log)
    assert _stop(process, signal.SIGTERM) == EXIT_SIGTERM, log.read_text()[-3000:]

    line = _one_stop_line(log)
    kept = len(read_rows(log_files(eval_dir)[0]))
    assert 3 <= kept < 102
    log_path = eval_dir / naming.prediction_log_name(0)
    assert line == (f"stopped by SIGTERM: {kept} of the 102 answers of SLAKE_test_iid_modality_X-Ray are kept in "
                    f"{log_path}; rerun the same command to continue from there")
    assert not (eval_dir / naming.TEST_RESULTS_FILE).exists()
    _no_lock_holder(eval_dir)

    resumed = subprocess.run(command, cwd=PROJECT_ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming SLAKE_test_iid_modality_X-Ray: {kept} of 102 questions already answered" in (
        resumed.stdout + resumed.stderr)

    clean_root = tmp_path / "uninterrupted"
    clean = subprocess.run(colour_inference_command(data_root, clean_root, tiny_llava_dir), cwd=PROJECT_ROOT, env=_env(),
                           capture_output=True, text=True, timeout=600)
    assert clean.returncode == 0, clean.stderr[-3000:]
    clean_file = clean_root / eval_dir.relative_to(experiments) / naming.TEST_RESULTS_FILE
    assert (eval_dir / naming.TEST_RESULTS_FILE).read_bytes() == clean_file.read_bytes()


@pytest.mark.slow
def test_ctrl_c_stops_inference_in_one_line_with_exit_130(tmp_path: Path, tiny_llava_dir: Path) -> None:
    data_root = many_colour_questions(tmp_path / "data", 100)
    experiments = tmp_path / "experiments"
    eval_dir = experiments / "SLAKE" / "pretrained" / naming.EVAL_DIR / "SLAKE_test_iid_modality_X-Ray"
    log = tmp_path / "run.log"
    process = _start(colour_inference_command(data_root, experiments, tiny_llava_dir), log)
    _wait_until(lambda: any(len(read_rows(p)) >= 1 for p in log_files(eval_dir)), process, log)
    assert _stop(process, signal.SIGINT) == 128 + signal.SIGINT, log.read_text()[-3000:]
    assert _one_stop_line(log).startswith("stopped by SIGINT: ")  # no KeyboardInterrupt traceback
    _no_lock_holder(eval_dir)


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # field 4: the parent's pid
                found.add(int(entry.name))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
@pytest.mark.parametrize("stage", ["inference", "training"])
def test_dataloader_workers_die_with_a_killed_process(stage: str, tmp_path: Path, tiny_llava_dir: Path) -> None:
    log = tmp_path / "run.log"
    if stage == "inference":
        data_root = many_colour_questions(tmp_path / "data", 100)
        experiments = tmp_path / "experiments"
        eval_dir = experiments / "SLAKE" / "pretrained" / naming.EVAL_DIR / "SLAKE_test_iid_modality_X-Ray"
        process = _start(colour_inference_command(data_root, experiments, tiny_llava_dir, "num_workers=2"), log)
        _wait_until(lambda: any(len(read_rows(p)) >= 1 for p in log_files(eval_dir)), process, log)
    else:
        data_root = tmp_path / "data"
        write_colour_slake(data_root, n_train=24)
        command = [arg.replace("dataloader_num_workers=0", "dataloader_num_workers=2")
                   for arg in _train_command(data_root, tiny_llava_dir, tmp_path / "experiments")]
        process = _start(command, log)
        _wait_until(lambda: "'loss':" in log.read_text(), process, log)
    workers = _children(process.pid)
    assert len(workers) >= 2, workers  # the two DataLoader workers
    process.send_signal(signal.SIGKILL)
    process.wait()
    # torch's own watchdog would notice within its 5 s polling interval, and only while a worker is idle; the
    # parent-death signal ends them at once
    deadline = time.monotonic() + 2
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [pid for pid in workers if _alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == [], f"DataLoader workers of {stage} outlived their parent"


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z"
    except OSError:
        return False


# --- evaluation ----------------------------------------------------------------------------------------------


def _judge_rows(n: int) -> list[dict[str, str]]:
    return [{"qid": str(i), "question": "What organ is shown?", "gt": "liver", "pred": f"the spleen, view {i}",
             "answer_type": "OPEN", "img_name": f"{i}.png"} for i in range(n)]


def _eval_command(folder: Path) -> list[str]:
    return [sys.executable, "run_eval.py", f"eval_dir={folder}", "dataset=null", "paths.experiment_root=null",
            "judge=smollm2", "judge.max_new_tokens=12", "judge.batch_size=1", "metric_type=[traditional_metrics,smollm2]",
            f"hydra.run.dir={folder.parent}/hydra-{folder.name}"]


def _cached_replies(cache: Path) -> int:
    if not cache.is_file():
        return 0
    try:
        with sqlite3.connect(cache, timeout=1) as db:
            return int(db.execute("SELECT COUNT(*) FROM judge_replies").fetchone()[0])
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_evaluation_stops_on_sigterm_with_the_judge_cache_kept_and_resumes(tmp_path: Path) -> None:
    rows = _judge_rows(6)
    folder = tmp_path / "eval_run"
    folder.mkdir()
    (folder / naming.TEST_RESULTS_FILE).write_text(json.dumps(rows))
    cache = folder / naming.JUDGE_CACHE_FILE
    log = tmp_path / "first.log"
    process = _start(_eval_command(folder), log)
    _wait_until(lambda: _cached_replies(cache) >= 2, process, log)
    assert _stop(process, signal.SIGTERM) == EXIT_SIGTERM, log.read_text()[-3000:]

    line = _one_stop_line(log)
    kept = _cached_replies(cache)
    assert 2 <= kept < 6
    assert line == (f"stopped by SIGTERM: {kept} new judge replies are kept in the judge cache {cache} (with every "
                    "earlier one); rerun the same command: they are not asked again")
    assert (folder / naming.OPEN_METRICS_FILE).is_file()  # the traditional metrics were finished first
    assert not (folder / "smollm2_metrics.json").exists()
    _no_lock_holder(folder)

    resumed = subprocess.run(_eval_command(folder), cwd=PROJECT_ROOT, env=_env(), capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"asked {6 - kept}, from cache {kept}" in resumed.stdout + resumed.stderr

    clean = tmp_path / "uninterrupted"
    clean.mkdir()
    (clean / naming.TEST_RESULTS_FILE).write_text(json.dumps(rows))
    done = subprocess.run(_eval_command(clean), cwd=PROJECT_ROOT, env=_env(), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    for name in (naming.OPEN_METRICS_FILE, naming.CLOSED_METRICS_FILE, "smollm2_metrics.json"):
        assert (folder / name).read_bytes() == (clean / name).read_bytes(), name


# --- training ------------------------------------------------------------------------------------------------

FOLDER = "llava-SLAKE_train_iid_modality_X-Ray-finetune_lora_rank4_lr3e-3_seed123"


def _train_command(data_root: Path, model: Path, experiments: Path) -> list[str]:
    # 24 questions, batch 2, 6 epochs = 72 steps (a few seconds: time to be stopped); no checkpoint would be
    # written before the end
    return train_command(data_root, model, experiments, "train.epochs=6", "train.save_steps=1000")


@pytest.mark.slow
def test_training_saves_a_checkpoint_on_sigterm_and_resumes_to_the_same_weights(tmp_path: Path,
                                                                                tiny_llava_dir: Path) -> None:
    data_root = tmp_path / "data"
    write_colour_slake(data_root, n_train=24)
    model = confident_copy(tiny_llava_dir, tmp_path / "model")
    experiments = tmp_path / "experiments"
    model_dir = experiments / FOLDER
    command = _train_command(data_root, model, experiments)
    log = tmp_path / "first.log"
    process = _start(command, log)
    _wait_until(lambda: log.read_text().count("'loss':") >= 3, process, log)
    assert _stop(process, signal.SIGTERM) == EXIT_SIGTERM, log.read_text()[-3000:]

    checkpoint = last_checkpoint(model_dir)
    assert checkpoint is not None and not is_finished(model_dir)
    step = json.loads((checkpoint / naming.TRAINER_STATE_FILE).read_text())["global_step"]
    assert 3 <= step < 72 and checkpoint.name == f"checkpoint-{step}"  # the step reached, not a save_steps multiple
    assert _one_stop_line(log) == (f"stopped by SIGTERM: training reached step {step} of 72, saved in {checkpoint}; "
                                   "rerun the same command to resume from it")
    _no_lock_holder(model_dir)

    resumed = subprocess.run(command, cwd=PROJECT_ROOT, env=_env(), capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {checkpoint}" in resumed.stdout and is_finished(model_dir)

    clean_root = tmp_path / "uninterrupted"
    clean = subprocess.run(_train_command(data_root, model, clean_root), cwd=PROJECT_ROOT, env=_env(),
                           capture_output=True, text=True, timeout=900)
    assert clean.returncode == 0, clean.stderr[-3000:]
    for name in ("adapter_model.safetensors", naming.PROJECTOR_WEIGHTS_FILE):
        assert (model_dir / name).read_bytes() == (clean_root / FOLDER / name).read_bytes(), name
    # the console shows the whole run's mean loss, as the files do (not the mean since the resume)
    state = json.loads((model_dir / naming.TRAINER_STATE_FILE).read_text())
    final = next(e["train_loss"] for e in reversed(state["log_history"]) if "train_loss" in e)
    printed = [line for line in resumed.stdout.splitlines() if "'train_loss':" in line]
    assert len(printed) == 1 and f"'train_loss': '{final:.4g}'" in printed[0], printed  # 4 digits, as printed
    since_resume = [e["loss"] for e in state["log_history"] if "loss" in e][step:]
    assert f"{sum(since_resume) / len(since_resume):.4g}" != f"{final:.4g}"  # what transformers alone would print


# --- the machinery, in-process --------------------------------------------------------------------------------


def test_a_stop_is_only_asked_inside_a_stoppable_block_and_a_second_signal_is_not_waited_on() -> None:
    before = signal.getsignal(signal.SIGTERM)
    received: list[int] = []

    def outer(signum: int, frame: object) -> None:
        received.append(signum)

    signal.signal(signal.SIGTERM, outer)
    try:
        with graceful_stop.stoppable():
            graceful_stop.check("nothing")  # no signal yet: carries on
            signal.raise_signal(signal.SIGTERM)
            assert graceful_stop.requested() == signal.SIGTERM and received == []
            with pytest.raises(graceful_stop.Stopped) as stopped:
                graceful_stop.check(lambda: "3 answers kept")
            assert str(stopped.value) == "stopped by SIGTERM: 3 answers kept" and stopped.value.exit_code == 143
            signal.raise_signal(signal.SIGTERM)  # the second: the handler that was there before runs at once
            assert received == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) is outer  # restored on leaving the block
        with graceful_stop.stoppable():
            assert graceful_stop.requested() is None  # a new block starts clean
    finally:
        signal.signal(signal.SIGTERM, before)


def test_under_submitit_the_preemption_signal_stops_then_requeues(monkeypatch: pytest.MonkeyPatch) -> None:
    """submitit binds USR2 to checkpoint-and-requeue; the stage stops cleanly first, then that handler runs."""
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "slurm")
    monkeypatch.delenv(graceful_stop.SUBMITIT_SIGNAL_ENV, raising=False)
    requeued: list[int] = []
    before = signal.getsignal(signal.SIGUSR2)
    signal.signal(signal.SIGUSR2, lambda signum, frame: requeued.append(signum))
    try:
        with graceful_stop.stoppable():
            signal.raise_signal(signal.SIGTERM)  # Slurm may send both, in either order
            signal.raise_signal(signal.SIGUSR2)
            assert requeued == []  # not yet: the stage first keeps its work
            with pytest.raises(graceful_stop.Stopped) as stopped:
                graceful_stop.check("kept")
        graceful_stop.hand_over(stopped.value)
        assert requeued == [signal.SIGUSR2]
    finally:
        signal.signal(signal.SIGUSR2, before)


def test_without_submitit_nothing_is_requeued() -> None:
    with graceful_stop.stoppable():
        signal.raise_signal(signal.SIGINT)
        with pytest.raises(graceful_stop.Stopped) as stopped:
            graceful_stop.check("kept")
    assert stopped.value.exit_code == 130
    graceful_stop.hand_over(stopped.value)  # no submitit handler: returns
