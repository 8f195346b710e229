"""python human_rater_study/analyze.py [key=value ...]: Exports the ratings and correlates them with the judge and the traditional metrics (config/rater/)."""



import hydra
from omegaconf import DictConfig

from sure_vqa.config import load_env, run_entry, run_hydra_app

load_env()


@hydra.main(version_base="1.3", config_path="../config", config_name="rater/rater_study_defaults")
@run_entry
def main(cfg: DictConfig) -> None:
    from sure_vqa.rater.commands import analyze

    analyze(cfg)


if __name__ == "__main__":
    run_hydra_app(main)
