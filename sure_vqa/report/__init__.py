"""Alias: `python -m sure_vqa.report` as documented; the report lives in `sure_vqa.study.report`."""
