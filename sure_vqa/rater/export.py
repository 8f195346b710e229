"""Exports the ratings database to `human_metrics_<open|closed>_<rater>.json`, one file per rater.

The files go into the study's eval folder, beside open_ended_metrics.json and the judge's file, in the
original SURE-VQA layout (a list of rows with qid, question, gt, pred, answer_type, human_score), so the
analysis (and the original notebook code) can read them. An export is derived from the database and is
rewritten on each export; a file with the same name that this study did not write is never overwritten.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from sure_vqa import naming
from sure_vqa.atomic_io import write_json_atomic
from sure_vqa.config import ConfigError
from sure_vqa.rater.db import RatingStore
from sure_vqa.rater.study import Study

log = logging.getLogger(__name__)


def default_db_path(study: Study) -> Path:
    """A server for one study keeps its ratings in the study folder."""
    return study.folder / naming.RATER_DB_FILE


def export_rows(study: Study, store: RatingStore, rater: str) -> list[dict[str, object]]:
    """One rater's rated questions in study order."""
    ratings = store.ratings_with_times(study.study_id, rater)
    rows = []
    for item in study.items:
        if item.qid not in ratings:
            continue
        score, updated_at = ratings[item.qid]
        rows.append(
            {
                "qid": item.qid,
                "question": item.question,
                "gt": item.gt,
                "pred": item.pred,
                "answer_type": item.answer_type,
                "human_score": score,
                "rater": rater,
                "study_id": study.study_id,
                "rated_at": updated_at,
            }
        )
    return rows


def _written_by_study(path: Path, study_id: str) -> bool:
    """True when every row of an existing export carries this study's id (so rewriting it loses nothing)."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(rows, list) and all(isinstance(r, dict) and r.get("study_id") == study_id for r in rows)


def export_ratings(study: Study, db_path: str | Path | None = None, out_dir: str | Path | None = None) -> list[Path]:
    """Writes one file per rater who rated anything in the study; returns the files written.

    `out_dir` defaults to the study's eval folder. Refuses (ConfigError) to replace a file of the same name
    that holds ratings from elsewhere (e.g. the original notebook), naming it.
    """
    db_path = Path(db_path) if db_path else default_db_path(study)
    if not db_path.is_file():
        raise ConfigError(f"ratings database {db_path} does not exist; start the app with human_rater_study/serve.py")
    out_dir = Path(out_dir) if out_dir else study.eval_dir
    if not out_dir.is_dir():
        raise ConfigError(f"export folder {out_dir} does not exist (the study's eval folder); set out_dir=PATH")
    store = RatingStore(db_path)
    written = []
    for rater in store.raters_in(study.study_id):
        rows = export_rows(study, store, rater)
        path = out_dir / naming.human_metrics_file(study.answer_kind, rater)
        if path.exists() and not _written_by_study(path, study.study_id):
            raise ConfigError(
                f"{path} exists and holds ratings that are not from study {study.study_id}; it is kept. "
                "Move it away, or export elsewhere with out_dir=PATH"
            )
        write_json_atomic(path, rows)
        log.info("%s: %d of %d questions rated -> %s", rater, len(rows), len(study.items), path)
        written.append(path)
    return written
