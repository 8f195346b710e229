"""python train.py [key=value ...]: Fine-tunes a VLM on the iid train split of a shift (config/train/training_defaults.yaml)."""

import hydra
from omegaconf import DictConfig

from sure_vqa.config import load_env, run_entry, run_hydra_app

load_env()


@hydra.main(version_base="1.3", config_path="config", config_name="train/training_defaults")
@run_entry
def main(cfg: DictConfig) -> None:
    from sure_vqa.train.run import train

    train(cfg)


if __name__ == "__main__":
    run_hydra_app(main)
