"""python human_rater_study/analyze.py [key=value ...]: exports the ratings and correlates them with the judge and
the traditional metrics, the same as `sure-vqa rater analyze` (config/rater/)."""

import sys

from sure_vqa.cli import main

if __name__ == "__main__":
    main(["rater", "analyze", *sys.argv[1:]])
