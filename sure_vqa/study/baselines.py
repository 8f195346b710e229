"""The most-frequent-answer baseline (docs/method.md#baselines-and-robustness): what a model scores that never looks at the image.

For each test question it answers with the answer most often given in the train split to the same question
text; for a question never seen in training, the most frequent answer of its question type (SLAKE/MIMIC
`content_type`, OVQA `question_type`) and answer type; failing that, of its answer type. For a closed question
with known answer options, fallbacks only pick an answer among those options. Ties go to the alphabetically
first answer, so the baseline does not depend on the order of the split file.

It writes `test_results.json` like a model, under its model folder (`runs.ModelIdentity.most_frequent`: `most_frequent-{train split}`) `/eval/<run>/`, so
every metric, the judge and the report treat it as one more model:

    sure-vqa baselines dataset=SLAKE data_shift=modality ood_value=X-Ray split=[iid,ood]
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sure_vqa import eval_folder, naming
from sure_vqa.config import ConfigError, DataError, check_choice
from sure_vqa.data.records import QARecord

log = logging.getLogger(__name__)

# The record field that holds a question's type, in order of preference (SLAKE/MIMIC, OVQA).
QUESTION_TYPE_FIELDS = ("content_type", "question_type")
LEVELS = ("question", "question_type", "answer_type", "options", "any")


def question_key(question: str) -> str:
    """Questions that differ only in case or spacing are the same question."""
    return " ".join(question.lower().split())


def answer_key(answer: str) -> str:
    return " ".join(str(answer).lower().split())


def question_type(record: QARecord) -> str | None:
    for name in QUESTION_TYPE_FIELDS:
        value = record.fields.get(name)
        if value not in (None, ""):
            return str(value)
    return None


@dataclass
class _AnswerCounts:
    """Answer counts under one key; answers are compared case-insensitively, the first spelling is kept."""

    counts: Counter = field(default_factory=Counter)
    spelling: dict[str, str] = field(default_factory=dict)

    def add(self, answer: str) -> None:
        key = answer_key(answer)
        self.counts[key] += 1
        self.spelling.setdefault(key, str(answer).strip())

    def most_frequent(self, allowed: Sequence[str] | None = None) -> str | None:
        """The most frequent answer (among `allowed`, if given); ties to the alphabetically first."""
        allowed_keys = None if allowed is None else {answer_key(a) for a in allowed}
        candidates = [(-n, key) for key, n in self.counts.items() if allowed_keys is None or key in allowed_keys]
        if not candidates:
            return None
        return self.spelling[min(candidates)[1]]


@dataclass(frozen=True)
class MostFrequentPrediction:
    answer: str
    level: str  # which table answered: one of LEVELS


class MostFrequentAnswer:
    """Answer tables learned from train records; `predict` is the baseline."""

    def __init__(self) -> None:
        self.by_question: dict[tuple[str, str], _AnswerCounts] = {}
        self.by_type: dict[tuple[str | None, str], _AnswerCounts] = {}
        self.by_answer_type: dict[str, _AnswerCounts] = {}
        self.overall = _AnswerCounts()

    @classmethod
    def fit(cls, records: Iterable[QARecord]) -> MostFrequentAnswer:
        model = cls()
        for record in records:
            answer_type = record.answer_type.upper()
            model.by_question.setdefault((question_key(record.question), answer_type), _AnswerCounts()).add(record.answer)
            model.by_type.setdefault((question_type(record), answer_type), _AnswerCounts()).add(record.answer)
            model.by_answer_type.setdefault(answer_type, _AnswerCounts()).add(record.answer)
            model.overall.add(record.answer)
        if not model.overall.counts:
            raise DataError("the train split has no records: the most-frequent baseline has nothing to learn from")
        return model

    def predict(self, record: QARecord) -> MostFrequentPrediction:
        answer_type = record.answer_type.upper()
        options = list(record.categories) if record.categories else None
        seen = self.by_question.get((question_key(record.question), answer_type))
        if seen is not None:
            return MostFrequentPrediction(seen.most_frequent(), "question")
        for level, table in (("question_type", self.by_type.get((question_type(record), answer_type))),
                             ("answer_type", self.by_answer_type.get(answer_type))):
            answer = table.most_frequent(options) if table is not None else None
            if answer is not None:
                return MostFrequentPrediction(answer, level)
        if options:
            return MostFrequentPrediction(sorted(options, key=answer_key)[0], "options")
        return MostFrequentPrediction(self.overall.most_frequent(), "any")


def result_rows(model: MostFrequentAnswer, records: Iterable[QARecord]) -> list[dict[str, Any]]:
    """test_results.json rows (docs/method.md#experiment-folders), plus `baseline_level`: which table gave the answer."""
    rows = []
    for record in records:
        prediction = model.predict(record)
        rows.append({"qid": record.qid, "question": record.question, "gt": record.answer, "pred": prediction.answer,
                     "answer_type": record.answer_type, "img_name": record.img_name,
                     "baseline_level": prediction.level})
    return rows


def write_results(rows: list[dict[str, Any]], out_dir: Path) -> bool:
    """Writes test_results.json atomically; returns False (and writes nothing) when it already holds `rows`."""
    path = out_dir / naming.TEST_RESULTS_FILE
    if path.is_file():
        try:
            if json.loads(path.read_text(encoding="utf-8")) == rows:
                return False
        except (OSError, json.JSONDecodeError):
            pass  # unreadable: replaced below
    eval_folder.write_test_results(path, rows)
    return True


def _splits(value: Any) -> list[str]:
    splits = [value] if isinstance(value, str) else list(value)
    for split in splits:
        check_choice(split, "split", naming.SPLITS)
    if not splits:
        raise ConfigError("split is empty; give one of iid, ood, all, sample or a list of them")
    return splits


def run_most_frequent(cfg: Mapping[str, Any]) -> list[Path]:
    """Learns the baseline on the configured train split and writes one eval run per test split.

    Reads dataset, data_shift, ood_value, train_split, mod, split (one or a list), max_samples and paths.*;
    returns the eval folders (max_samples answers the same part of each test split as inference does). A run whose test_results.json already holds the same answers is left untouched.
    """
    from sure_vqa import runs
    from sure_vqa.data.splits import limit_records, split_records

    dataset_root = runs.dataset_root(cfg)
    runs.experiment_root(cfg)  # set, or a message naming it
    mod = check_choice(cfg.get("mod", "test"), "mod", ("test", "val"))
    train_split = check_choice(cfg.get("train_split", "iid"), "train_split", ("iid", "all", "sample"))
    # No seed: split=sample uses the data seed (the same questions as the models are trained and tested on).
    train_records = split_records(dataset_root, cfg["dataset"], "train", train_split,
                                  *runs.shift_of(cfg, train_split))
    model = MostFrequentAnswer.fit(train_records)
    model_dir = runs.ModelIdentity.most_frequent(cfg).model_dir()
    written = []
    for split in _splits(cfg.get("split", ["iid", "ood"])):
        test_records = limit_records(split_records(dataset_root, cfg["dataset"], mod, split,
                                                   *runs.shift_of(cfg, split)), cfg.get("max_samples"))
        test_name = naming.split_name(cfg["dataset"], mod, split, *runs.shift_of(cfg, split))
        out_dir = naming.eval_dir(model_dir, naming.eval_run_name(test_name))
        changed = write_results(result_rows(model, test_records), out_dir)
        log.info("most frequent %s: %s (%d questions)", "written" if changed else "unchanged", out_dir,
                 len(test_records))
        written.append(out_dir)
    return written


def baselines_command(cfg: Mapping[str, Any]) -> None:
    """`sure-vqa baselines` (config/study/most_frequent.yaml): writes the baseline's answers, prints each file."""
    for out_dir in run_most_frequent(cfg):
        print(out_dir / naming.TEST_RESULTS_FILE)
