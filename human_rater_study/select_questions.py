"""python human_rater_study/select_questions.py [key=value ...]: Chooses the questions of a human rater study and writes its study folder (config/rater/)."""

import os
import sys

# The project root goes first on sys.path, so the package imports from anywhere without installing it.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from sure_vqa.config import load_env, run_entry, run_hydra_app  # noqa: E402

load_env()


@hydra.main(version_base="1.3", config_path="../config", config_name="rater/rater_study_defaults")
@run_entry
def main(cfg: DictConfig) -> None:
    from sure_vqa.rater.commands import select

    select(cfg)


if __name__ == "__main__":
    run_hydra_app(main)
