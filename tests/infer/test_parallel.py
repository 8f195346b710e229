"""Data-parallel inference: `accelerate launch` with 2 CPU processes (gloo) gives the single-process results,
also when it continues a run that a single process started."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sure_vqa import naming
from sure_vqa.demo.dataset import build_demo
from sure_vqa.infer.generation.prediction_log import read_rows
from sure_vqa.infer.run import run_inference
from tests.conftest import PROJECT_ROOT
from tests.helpers.inference_helpers import GenerateSpy, compose_cfg, inference_command

# accelerate's multi-process launcher is torchrun; on a machine without GPUs each rank runs on the CPU.
LAUNCH = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
          "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]


@pytest.mark.slow
def test_two_processes_continue_a_run_and_match_one_process(tiny_llava_dir, tmp_path, monkeypatch):
    dataset_root = build_demo(tmp_path / "datasets" / "demo").parent
    clean = json.loads(run_inference(compose_cfg(dataset_root, tmp_path / "clean", tiny_llava_dir)).read_text())
    eval_dir = tmp_path / "parallel"
    # A single process answers one batch and is interrupted ...
    GenerateSpy(monkeypatch, fail_on_call=2)
    with pytest.raises(KeyboardInterrupt):
        run_inference(compose_cfg(dataset_root, tmp_path / "exp", tiny_llava_dir, ["batch_size=4", f"eval_dir={eval_dir}"]))
    assert len(read_rows(eval_dir / naming.PREDICTION_LOG_FILE)) == 4
    # ... and two ranks finish it, each with its own log, rank 0 merging.
    command = inference_command(dataset_root, tmp_path / "exp", tiny_llava_dir, eval_dir, tmp_path / "hydra",
                                "batch_size=4")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": "1"}
    launched = subprocess.run([*LAUNCH, *command[1:]], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                              timeout=600)
    assert launched.returncode == 0, launched.stdout[-3000:] + launched.stderr[-3000:]
    output = launched.stdout + launched.stderr
    assert "[rank 0/2]" in output and "[rank 1/2]" in output
    assert json.loads((eval_dir / naming.TEST_RESULTS_FILE).read_text()) == clean
    info = json.loads((eval_dir / naming.INFERENCE_INFO_FILE).read_text())
    assert info["world_size"] == 2
    assert sorted(p.name for p in eval_dir.iterdir()) == sorted([
        naming.INFERENCE_INFO_FILE, naming.TEST_RESULTS_FILE,
        naming.run_lock_name("inference", 0), naming.run_lock_name("inference", 1)])  # one lock per rank
