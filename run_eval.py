"""python run_eval.py [key=value ...]: scores a run's test_results.json with traditional metrics and an LLM judge,
the same as `sure-vqa eval` (config/eval/; kept as the paper's entry point)."""

import sys

from sure_vqa.cli import main

if __name__ == "__main__":
    main(["eval", *sys.argv[1:]])
