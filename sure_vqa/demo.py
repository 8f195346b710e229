"""`python -m sure_vqa.demo [--out DIR] [--quick]`, kept as the README documents it (sure_vqa.study.demo)."""

from sure_vqa.study.demo import main

if __name__ == "__main__":
    main()
