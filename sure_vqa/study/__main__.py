"""`python -m sure_vqa.study`: the whole grid for one shift (docs/study.md)."""

from sure_vqa.study.run import main

if __name__ == "__main__":
    main()
