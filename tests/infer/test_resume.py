"""A real `python inference.py` process killed mid-run (SIGKILL) and started again finishes with the same
test_results.json as an uninterrupted run: no question missing, none answered twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from sure_vqa import naming
from sure_vqa.demo.dataset import build_demo
from sure_vqa.infer.generation.prediction_log import read_rows
from sure_vqa.infer.run import run_inference
from tests.conftest import PROJECT_ROOT
from tests.helpers.inference_helpers import NUM_QUESTIONS, compose_cfg, inference_command


def logged_rows(log: Path) -> int:
    try:
        return max(0, log.read_text(encoding="utf-8").count("\n") - 1)  # minus the header line
    except FileNotFoundError:
        return 0


@pytest.mark.slow
def test_a_killed_process_resumes_to_the_same_results(tiny_llava_dir, tmp_path):
    dataset_root = build_demo(tmp_path / "datasets" / "demo").parent
    clean = json.loads(run_inference(compose_cfg(dataset_root, tmp_path / "clean", tiny_llava_dir)).read_text())
    eval_dir = tmp_path / "killed"
    log = eval_dir / naming.PREDICTION_LOG_FILE
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = inference_command(dataset_root, tmp_path / "exp", tiny_llava_dir, eval_dir, tmp_path / "hydra",
                                "batch_size=1")
    output = tmp_path / "killed_run.log"
    with output.open("w") as sink:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while logged_rows(log) < 4:
            assert process.poll() is None, f"inference.py ended before it was killed: {output.read_text()}"
            assert time.monotonic() < deadline, "no predictions were logged within 240 s"
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    answered = read_rows(log)
    assert 4 <= len(answered) < NUM_QUESTIONS and not (eval_dir / naming.TEST_RESULTS_FILE).exists()

    resumed = subprocess.run(command[:-1] + ["batch_size=3"], cwd=PROJECT_ROOT, env=env, capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(answered)} of {NUM_QUESTIONS} questions already answered" in resumed.stdout + resumed.stderr
    results = json.loads((eval_dir / naming.TEST_RESULTS_FILE).read_text())
    assert results == clean
    qids = [row["qid"] for row in results]
    assert len(qids) == len(set(qids)) == NUM_QUESTIONS
    assert not log.exists()
