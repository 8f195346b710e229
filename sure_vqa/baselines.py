"""`python -m sure_vqa.baselines most_frequent [key=value ...]`, kept as documented (sure_vqa.study.baselines)."""

import sys

from sure_vqa.study.baselines import main

if __name__ == "__main__":
    main(sys.argv[1:])
