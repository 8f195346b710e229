"""python inference.py [key=value ...]: runs a fine-tuned or the zero-shot model on a test split, the same as
`sure-vqa infer` (config/inference/; kept as the paper's entry point, e.g. for `accelerate launch inference.py`)."""

import sys

from sure_vqa.cli import main

if __name__ == "__main__":
    main(["infer", *sys.argv[1:]])
