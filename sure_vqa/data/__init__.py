"""Datasets: one reader per raw dataset behind a registry, shifts and split files, answer categories."""
