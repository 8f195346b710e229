"""Choosing the questions of a rater study and writing its self-contained study folder (docs/method.md#human-rater-study).

Only questions whose prediction differs from the ground truth are rated: an identical answer gets full marks
from the judge without asking it (§4.7), so rating it would tell nothing about agreement. "Identical" is the
judge's own test (`judge.rubrics.same_answer`), so the study holds exactly the questions the judge scored.
The sample is drawn with a seeded generator from the candidates sorted by qid, so it does not depend on the
order of test_results.json. Stratifying by the judge's score spreads the sample over the judge's scale (as
the original "balanced" selection did), so that a correlation is not computed on a sample of almost all 1s.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from sure_vqa import eval_folder, naming
from sure_vqa.atomic_io import file_sha256, write_bytes_atomic, write_json_atomic
from sure_vqa.config import ConfigError, DataError
from sure_vqa.evaluate.judge.rubrics import same_answer
from sure_vqa.rater import study as study_format
from sure_vqa.rater.rubric import SCALES, scale_for

log = logging.getLogger(__name__)

ANSWER_TYPE_OF_KIND = {"open": "OPEN", "closed": "CLOSED"}
# Formats every browser shows as they are; anything else (16-bit, TIFF, DICOM exports) is converted to PNG.
BROWSER_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "WEBP": ".webp"}
BROWSER_MODES = ("1", "L", "LA", "P", "RGB", "RGBA")
# Keys under which a judge file's per-question rows may hold the score, tried in this order
# ("{judge}_score" is the original SURE-VQA's `mistral_score` pattern).


@dataclass(frozen=True)
class SelectionSettings:
    """Everything that decides which questions a study holds; a study folder is reused only for equal settings."""

    answer_kind: str = "open"
    num_questions: int = 50
    seed: int = 0
    stratify_by_judge: bool = False
    judge: str | None = None

    def check(self) -> SelectionSettings:
        if self.answer_kind not in naming.ANSWER_KINDS:
            raise ConfigError(
                f"answer_kind={self.answer_kind!r} is not valid; valid values: {', '.join(naming.ANSWER_KINDS)}"
            )
        if isinstance(self.num_questions, bool) or not isinstance(self.num_questions, int) or self.num_questions < 1:
            raise ConfigError(f"num_questions={self.num_questions!r} is not valid; it must be an integer >= 1")
        if self.stratify_by_judge and not self.judge:
            raise ConfigError("stratify_by_judge=true needs a judge name (judge.name) whose scores to stratify by")
        return self


# --- reading the eval folder ---------------------------------------------------------------------


def load_test_results(path: Path) -> list[dict[str, Any]]:
    """The rows of a test_results.json (sure_vqa.eval_folder), which must also name each question's image."""
    return eval_folder.read_test_results(path, (*eval_folder.RESULT_KEYS, "img_name"))


def load_categories(rows: Sequence[Mapping[str, Any]], closed_metrics_path: Path) -> dict[str, list[str] | None]:
    """qid -> answer categories of closed questions, which route a question to its rubric as the judge does.

    Taken from the test_results row when it carries them, else from closed_ended_metrics.json (which lists
    each row's categories); a question with neither is routed like the judge routes unknown categories.
    """
    categories: dict[str, list[str] | None] = {
        str(row["qid"]): row.get("answer_categories", row.get("categories"))
        for row in rows
        if row.get("answer_categories", row.get("categories")) is not None
    }
    if closed_metrics_path.is_file():
        for row in eval_folder.read_json(closed_metrics_path):
            if isinstance(row, dict) and "qid" in row and row.get("categories") is not None:
                categories.setdefault(str(row["qid"]), row["categories"])
    return categories


def load_judge_rubrics(path: Path) -> dict[str, str]:
    """qid -> the rubric the judge scored a row with (`rubric` in the rows sure_vqa.evaluate.run writes), so that
    people rate a question on exactly the judge's scale; rows without one are left to `scale_for`."""
    return {
        str(row["qid"]): row["rubric"]
        for row in eval_folder.read_json(path)
        if isinstance(row, dict) and "qid" in row and row.get("rubric") in SCALES
    }


# --- choosing questions --------------------------------------------------------------------------


def candidates(rows: Sequence[Mapping[str, Any]], answer_kind: str) -> list[dict[str, Any]]:
    """Rows of the answer kind whose prediction differs from the ground truth, sorted by qid."""
    answer_type = ANSWER_TYPE_OF_KIND[answer_kind]
    chosen = [
        dict(row)
        for row in rows
        if str(row["answer_type"]).upper() == answer_type and not same_answer(row["gt"], row["pred"])
    ]
    return sorted(chosen, key=lambda row: row["qid"])


def allocate(total: int, capacities: Sequence[int]) -> list[int]:
    """Splits `total` as evenly as possible over strata of the given sizes (water-filling).

    Each round gives every stratum that still has room an equal share (the first strata in order take the
    remainder); what a small stratum cannot take goes to the others in the next round.
    """
    taken = [0] * len(capacities)
    remaining = min(total, sum(capacities))
    while remaining > 0:
        open_strata = [i for i, cap in enumerate(capacities) if taken[i] < cap]
        share, extra = divmod(remaining, len(open_strata))
        for rank, i in enumerate(open_strata):
            give = min(capacities[i] - taken[i], share + (1 if rank < extra else 0))
            taken[i] += give
            remaining -= give
    return taken


def sample_questions(
    pool: Sequence[dict[str, Any]],
    num_questions: int,
    seed: int,
    judge_scores: Mapping[str, float | None] | None = None,
    stratify_by_judge: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A seeded sample of `num_questions` rows of the pool (all of them if it is smaller) and a summary.

    Stratified: the pool is grouped by judge score and `allocate` decides how many come from each group;
    questions whose judge score failed are left out of a stratified sample (and counted in the summary).
    """
    rng = np.random.default_rng(seed)
    summary: dict[str, Any] = {"n_candidates": len(pool)}
    if not stratify_by_judge:
        size = min(num_questions, len(pool))
        picked = sorted(rng.choice(len(pool), size=size, replace=False).tolist())
        return [pool[i] for i in picked], summary
    if judge_scores is None:
        raise ConfigError("stratify_by_judge=true needs the judge's scores")
    strata: dict[float, list[dict[str, Any]]] = {}
    unscored = 0
    for row in pool:
        score = judge_scores.get(row["qid"])
        if score is None:
            unscored += 1
            continue
        strata.setdefault(score, []).append(row)
    levels = sorted(strata)
    counts = allocate(num_questions, [len(strata[level]) for level in levels])
    chosen: list[dict[str, Any]] = []
    for level, count in zip(levels, counts, strict=True):
        group = strata[level]
        picked = sorted(rng.choice(len(group), size=count, replace=False).tolist())
        chosen.extend(group[i] for i in picked)
    summary["left_out_without_judge_score"] = unscored
    summary["per_judge_score"] = {f"{level:g}": count for level, count in zip(levels, counts, strict=True)}
    return sorted(chosen, key=lambda row: row["qid"]), summary


# --- images --------------------------------------------------------------------------------------

ImageResolver = Callable[[Mapping[str, Any]], Path]


def image_folder_resolver(image_root: str | Path) -> ImageResolver:
    """Images found as `<image_root>/<img_name>` (e.g. SLAKE's `imgs/` folder, or any folder of results
    written by the original code). `sure_vqa.rater.commands` resolves them through the split records instead."""
    root = Path(image_root).expanduser()
    if not root.is_dir():
        raise ConfigError(f"image_root={root} is not a folder")

    def resolve(row: Mapping[str, Any]) -> Path:
        return root / str(row["img_name"])

    return resolve


def browser_image(path: Path) -> tuple[bytes, str]:
    """The image as bytes a browser shows, and their file suffix: kept as is when possible, else PNG."""
    if not path.is_file():
        raise DataError(f"image file {path} does not exist; set image_root=PATH to the folder holding img_name")
    data = path.read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
            if opened.format in BROWSER_FORMATS and opened.mode in BROWSER_MODES:
                return data, BROWSER_FORMATS[opened.format]
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise DataError(f"image file {path} cannot be read as an image: {err}") from err
    from sure_vqa.images.loading import (
        load_image,  # the project's one way to turn deep/odd modes into 8-bit RGB
    )

    buffer = io.BytesIO()
    load_image(path).save(buffer, format="PNG")
    return buffer.getvalue(), ".png"


def copy_image(path: Path, images_dir: Path) -> str:
    """Copies one image into the study under a content-hash name (no dataset or model name leaks to raters)."""
    data, suffix = browser_image(path)
    name = hashlib.sha256(data).hexdigest()[:32] + suffix
    target = images_dir / name
    if not target.exists():
        write_bytes_atomic(target, data)
    return f"{naming.RATER_IMAGES_DIR}/{name}"


# --- the study folder ----------------------------------------------------------------------------


def create_study(
    eval_dir: str | Path,
    settings: SelectionSettings,
    resolve_image: ImageResolver,
    study_dir: str | Path | None = None,
    study_id: str | None = None,
) -> Path:
    """Selects the questions of `eval_dir` and writes `<study_dir>/study.json` with the images copied beside it.

    Running it again with the same settings and the same results returns the existing folder untouched;
    different settings on an existing study folder are refused, so no study (nor the ratings that refer
    to it) is ever overwritten.
    """
    settings = settings.check()
    eval_dir = Path(eval_dir).expanduser().resolve()
    results_path = eval_dir / naming.TEST_RESULTS_FILE
    if not results_path.is_file():
        raise ConfigError(f"{results_path} does not exist; run inference.py for this eval folder first")
    study_dir = Path(study_dir).expanduser().resolve() if study_dir else naming.rater_study_dir(
        eval_dir, settings.answer_kind
    )
    judge_path = None
    if settings.judge:
        judge_path = eval_dir / naming.judge_metrics_files(settings.judge)[0 if settings.answer_kind == "open" else 1]
    fingerprint = {
        "settings": settings.__dict__,
        "test_results_sha256": file_sha256(results_path),
        "judge_file_sha256": file_sha256(judge_path) if judge_path and judge_path.is_file() else None,
    }
    existing = study_format.study_file(study_dir)
    if existing.exists():
        previous = eval_folder.read_json(existing)
        if previous.get("fingerprint") == fingerprint:
            log.info("study %s already selected with these settings; nothing to do", study_dir)
            return study_dir
        raise ConfigError(
            f"{existing} already holds a study selected with other settings or from other results; it is kept "
            "(ratings may refer to it). Choose another study_dir, or move that folder away first."
        )
    if study_id is None:
        study_id = f"{settings.answer_kind}-" + hashlib.sha256(
            json.dumps({**fingerprint, "eval_dir": str(eval_dir)}, sort_keys=True).encode()
        ).hexdigest()[:10]
    study_format.check_study_id(study_id)

    rows = load_test_results(results_path)
    judge_scores: dict[str, float | None] | None = None
    for scored in (judge_path, eval_dir / naming.CLOSED_METRICS_FILE):  # joined to the answers by qid below
        if scored is not None and scored.is_file():
            found = eval_folder.check_current(scored, eval_dir)
            if found.status == eval_folder.UNVERIFIED:
                log.warning("%s %s", scored, found.reason)
    if judge_path is not None and judge_path.is_file():
        judge_scores = eval_folder.read_judge_scores(judge_path, settings.judge or "")
    elif settings.stratify_by_judge:
        raise ConfigError(f"stratify_by_judge=true but {judge_path} does not exist; run run_eval.py with the judge")
    pool = candidates(rows, settings.answer_kind)
    if not pool:
        raise DataError(
            f"{results_path} has no {settings.answer_kind} questions whose prediction differs from the ground truth"
        )
    chosen, summary = sample_questions(
        pool, settings.num_questions, settings.seed, judge_scores, settings.stratify_by_judge
    )
    if len(chosen) < settings.num_questions:
        log.warning("only %d of the %d requested questions are available", len(chosen), settings.num_questions)

    categories = load_categories(rows, eval_dir / naming.CLOSED_METRICS_FILE)
    judge_rubrics = load_judge_rubrics(judge_path) if judge_path is not None and judge_path.is_file() else {}
    images_dir = study_dir / naming.RATER_IMAGES_DIR
    items = []
    for row in chosen:
        items.append(
            study_format.StudyItem(
                qid=row["qid"],
                question=str(row["question"]),
                gt=row["gt"],
                pred=row["pred"],
                answer_type=str(row["answer_type"]),
                img_name=str(row["img_name"]),
                image=copy_image(resolve_image(row), images_dir),
                scale=judge_rubrics.get(row["qid"]) or scale_for(row["answer_type"], categories.get(row["qid"])).name,
                judge_score=judge_scores.get(row["qid"]) if judge_scores else None,
            ).to_json()
        )
    payload = {
        "format_version": study_format.FORMAT_VERSION,
        "study_id": study_id,
        "answer_kind": settings.answer_kind,
        "eval_dir": os.path.relpath(eval_dir, study_dir),
        "judge": settings.judge,
        "fingerprint": fingerprint,
        "selection": {**summary, "n_requested": settings.num_questions, "n_selected": len(items)},
        "items": items,
    }
    write_json_atomic(existing, payload)
    return study_dir
