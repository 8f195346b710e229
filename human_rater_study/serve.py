"""python human_rater_study/serve.py [key=value ...]: starts the rating web app for a study (ratings are saved on
every click), the same as `sure-vqa rater serve` (config/rater/)."""

import sys

from sure_vqa.cli import main

if __name__ == "__main__":
    main(["rater", "serve", *sys.argv[1:]])
