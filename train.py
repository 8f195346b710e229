"""python train.py [key=value ...]: fine-tunes a VLM on the iid train split of a shift, the same as `sure-vqa train`
(config/train/training_defaults.yaml; kept as the paper's entry point, e.g. for `accelerate launch train.py`)."""

import sys

from sure_vqa.cli import main

if __name__ == "__main__":
    main(["train", *sys.argv[1:]])
