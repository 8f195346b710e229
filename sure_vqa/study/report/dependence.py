"""How often a model's answer changes when its image is removed or replaced (R3: does it look at the image?).

For each run without the image, with a blank image or with another question's image (the study's image
controls, docs/study.md), the same model's run with the image on the same split is the reference: the share of
the questions both answered whose normalised answer (docs/method.md#traditional-metrics) differs. Seeds are
pooled (answers changed / answers compared). A model that ignores its image changes nothing; one that reads it
changes answers whose right value depends on the image.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from sure_vqa import eval_folder, naming
from sure_vqa.config import DataError
from sure_vqa.evaluate.metrics.normalize import normalize_answer
from sure_vqa.study.report.grid import Variant
from sure_vqa.study.report.scan import IMAGE, Run

COLUMNS = ["shift", "model", "condition", "split", "answers_compared", "answers_changed", "share_changed"]


def _answers(path: Path, cache: dict[Path, dict[str, str] | None]) -> dict[str, str] | None:
    if path not in cache:
        try:
            rows = eval_folder.read_test_results(path / naming.TEST_RESULTS_FILE)
            cache[path] = {str(row["qid"]): normalize_answer(str(row["pred"])) for row in rows}
        except (DataError, OSError):
            cache[path] = None  # reported by the missing-runs table; no dependence figure from it
    return cache[path]


def image_dependence(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per (shift, model, condition, split) that has both a control run and the run with the image."""
    with_image = {(run.model.path, run.shift, run.split): run for run in runs
                  if run.condition == IMAGE and run.corruption is None}
    cache: dict[Path, dict[str, str] | None] = {}
    pooled: dict[tuple, list[int]] = {}
    for run in runs:
        if run.condition == IMAGE or run.corruption is not None:
            continue
        reference = with_image.get((run.model.path, run.shift, run.split))
        if reference is None:
            continue
        control, original = _answers(run.path, cache), _answers(reference.path, cache)
        if control is None or original is None:
            continue
        shared = control.keys() & original.keys()
        model = Variant(run.model.kind, run.model.method, run.model.train_images, IMAGE).label
        counts = pooled.setdefault((run.shift.label, model, run.condition, run.split), [0, 0])
        counts[0] += len(shared)
        counts[1] += sum(1 for qid in shared if control[qid] != original[qid])
    rows = [{"shift": shift, "model": model, "condition": condition, "split": split, "answers_compared": n,
             "answers_changed": changed, "share_changed": changed / n if n else None}
            for (shift, model, condition, split), (n, changed) in pooled.items()]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.sort_values(["shift", "model", "condition", "split"], kind="stable").reset_index(drop=True)


def display(frame: pd.DataFrame) -> pd.DataFrame:
    """The shift's rows as the report shows them: one row per model and condition, iid and ood side by side."""
    if frame.empty:
        return frame
    shown = frame.assign(changed=[f"{c}/{n} ({s:.0%})" if n else "–" for c, n, s in
                                  zip(frame["answers_changed"], frame["answers_compared"],
                                      frame["share_changed"].fillna(0.0), strict=True)])
    table = shown.pivot_table(index=["model", "condition"], columns="split", values="changed", aggfunc="first",
                              sort=False)
    table.columns = [f"answers changed ({split})" for split in table.columns]
    return table.reset_index()
