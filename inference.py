"""python inference.py [key=value ...]: Runs a fine-tuned or the pretrained model on a test split (config/inference/)."""

import hydra
from omegaconf import DictConfig

from sure_vqa.config import load_env, run_entry, run_hydra_app

load_env()


@hydra.main(version_base="1.3", config_path="config", config_name="inference/inference_defaults")
@run_entry
def main(cfg: DictConfig) -> None:
    from sure_vqa.infer.run import run_inference

    run_inference(cfg)


if __name__ == "__main__":
    run_hydra_app(main)
