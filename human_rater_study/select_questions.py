"""python human_rater_study/select_questions.py [key=value ...]: chooses the questions of a human rater study and
writes its study folder, the same as `sure-vqa rater select` (config/rater/)."""

import sys

from sure_vqa.cli import main

if __name__ == "__main__":
    main(["rater", "select", *sys.argv[1:]])
