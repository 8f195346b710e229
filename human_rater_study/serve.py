"""python human_rater_study/serve.py [key=value ...]: Starts the rating web app for a study; ratings are saved on every click (config/rater/)."""



import hydra
from omegaconf import DictConfig

from sure_vqa.config import load_env, run_entry, run_hydra_app

load_env()


@hydra.main(version_base="1.3", config_path="../config", config_name="rater/rater_study_defaults")
@run_entry
def main(cfg: DictConfig) -> None:
    from sure_vqa.rater.commands import serve

    serve(cfg)


if __name__ == "__main__":
    run_hydra_app(main)
