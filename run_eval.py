"""python run_eval.py [key=value ...]: Scores a run's test_results.json with traditional metrics and an LLM judge (config/eval/)."""

import hydra
from omegaconf import DictConfig

from sure_vqa.config import load_env, run_entry, run_hydra_app

load_env()


@hydra.main(version_base="1.3", config_path="config", config_name="eval/metrics_eval_defaults")
@run_entry
def main(cfg: DictConfig) -> None:
    from sure_vqa.evaluate.run import run_evaluation

    run_evaluation(cfg)


if __name__ == "__main__":
    run_hydra_app(main)
