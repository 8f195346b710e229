"""`python -m sure_vqa.corruptions grid IMAGE OUT`, kept as documented (sure_vqa.images.corruption_grid)."""

from sure_vqa.images.corruption_grid import main

if __name__ == "__main__":
    main()
