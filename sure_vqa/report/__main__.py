"""`python -m sure_vqa.report [key=value ...]`, kept as the README documents it (sure_vqa.study.report)."""

import sys

from sure_vqa.study.report.__main__ import main

if __name__ == "__main__":
    main(sys.argv[1:])
