"""Judge settings from the real config files, and each bad setting's message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from sure_vqa.config import ConfigError, compose
from sure_vqa.evaluate.judge.registry import check_judge_config


def judge_config(*overrides: str) -> dict[str, Any]:
    cfg = compose(config_name="eval/metrics_eval_defaults", overrides=list(overrides))
    return OmegaConf.to_container(cfg.judge, resolve=True)  # type: ignore[return-value]


def test_gemma_config(tmp_path: Path) -> None:
    settings = check_judge_config(judge_config(f"paths.judge_model_path={tmp_path}"))
    assert (settings.name, settings.backend, settings.model) == ("gemma", "hf", "gemma-2-9b-it")
    assert settings.identity == "gemma-2-9b-it (hf, greedy, max_new_tokens=64)"
    assert settings.options.model_path == str(tmp_path)
    assert sorted(p.id for p in settings.prompts().values()) == ["closed.v1", "open.v1", "two_option.v1"]


def test_smollm2_config_extends_gemma() -> None:
    settings = check_judge_config(judge_config("judge=smollm2"))
    assert (settings.name, settings.backend, settings.options.model_provider) == ("smollm2", "hf", "smollm2")
    assert settings.identity == "SmolLM2-135M-Instruct-Q4_1 (hf, greedy, max_new_tokens=32)"


def test_openai_backend_config() -> None:
    settings = check_judge_config(judge_config("judge.backend=openai", "judge.base_url=http://127.0.0.1:8000/v1",
                                               "judge.concurrency=4", "judge.timeout_s=2.5"))
    assert (settings.backend, settings.options.base_url, settings.options.concurrency, settings.options.timeout_s) == (
        "openai", "http://127.0.0.1:8000/v1", 4, 2.5)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["judge.backend=vllm"], r"judge.backend='vllm' is not a known judge backend; valid values: hf, openai"),
        (["paths.judge_model_path=null"], r"judge.model_path is not set \(set JUDGE_MODEL_PATH"),
        (["paths.judge_model_path=/no/such/folder"], r"judge.model_path=/no/such/folder is not a model folder"),
        (["judge=smollm2", "judge.model_provider=phi"], r"judge.model_provider='phi' is not valid; valid providers: smollm2"),
        (["judge.backend=openai"], r"judge.base_url is not set"),
        (["judge.backend=openai", "judge.base_url=http://x/v1", "judge.api_key_env=SURE_VQA_NO_SUCH_KEY"],
         r"judge.api_key_env=SURE_VQA_NO_SUCH_KEY: that environment variable is not set"),
        (["judge=smollm2", "judge.batch_size=0"], r"judge.batch_size=0 is not valid; it must be an integer >= 1"),
        (["judge=smollm2", "judge.max_new_tokens=many"], r"judge.max_new_tokens='many' is not valid"),
        (["judge=smollm2", "judge.timeout_s=-1"], r"judge.timeout_s=-1.0 is not valid; it must be a number of seconds > 0"),
        (["judge=smollm2", "judge.prompt_version=v7"], r"judge.prompt_version='v7'"),
        (["judge=smollm2", "judge.name=my judge"], r"judge.name='my judge' is not valid"),
        (["judge=smollm2", "judge.dtype=int8"], r"judge.dtype='int8' is not valid; valid values: auto, bfloat16"),
        (["judge=smollm2", "judge.device=tpu"], r"judge.device='tpu' is not valid"),
    ],
)
def test_bad_judge_settings(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_judge_config(judge_config(*overrides))
