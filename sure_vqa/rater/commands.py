"""From a composed config (config/rater/rater_study_defaults.yaml) to the rater study's stage calls.

The three entry scripts in human_rater_study/ each call one function here. The study's eval folder is found
from the same settings as inference.py and run_eval.py (`sure_vqa.runs.eval_dir`), or given as eval_dir=PATH;
the study folder defaults to `<eval_dir>/rater_study_<answer_kind>`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sure_vqa import eval_folder, naming, runs
from sure_vqa.config import ConfigError, DataError
from sure_vqa.rater import selection
from sure_vqa.rater.settings import RaterSettings
from sure_vqa.settings import checked

log = logging.getLogger(__name__)

SPLIT_KEYS = ("dataset", "mod", "split", "data_shift", "ood_value")  # what selects a run's questions


def _rater(cfg: Mapping[str, Any]) -> RaterSettings:
    section = cfg.get("rater")
    if section is None:
        raise ConfigError("the config has no `rater` section; use config/rater/rater_study_defaults.yaml")
    return checked(RaterSettings, section, "rater")


def answer_kind(cfg: Mapping[str, Any]) -> str:
    return _rater(cfg).answer_kind


def study_dir(cfg: Mapping[str, Any]) -> Path:
    """rater.study_dir, or `<eval_dir>/rater_study_<answer_kind>`."""
    explicit = _rater(cfg).study_dir
    if explicit:
        return Path(str(explicit)).expanduser().resolve()
    return naming.rater_study_dir(runs.eval_dir(cfg), answer_kind(cfg))


def _judge_name(cfg: Mapping[str, Any]) -> str | None:
    judge = cfg.get("judge")
    return str(judge["name"]) if judge and judge.get("name") else None


def rated_split(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """dataset, mod, split, data_shift, ood_value of the rated run's questions.

    From the eval folder's inference_info.json when it has one (every run of this project's inference.py), so that
    `eval_dir=PATH` alone is enough; from the settings otherwise (results written by the original code).
    """
    info_path = runs.eval_dir(cfg) / naming.INFERENCE_INFO_FILE
    if info_path.is_file():
        info = eval_folder.read_json(info_path)
        recorded = info.get("split_selection") if isinstance(info, dict) else None
        if isinstance(recorded, dict) and recorded.get("dataset"):
            return {key: recorded.get(key) for key in SPLIT_KEYS}
        test_split = (info.get("settings") or {}).get("test_split") if isinstance(info, dict) else None
        try:
            from sure_vqa.data.registry import known_shift_fields

            parsed = naming.parse_split_name(str(test_split), known_shift_fields())
        except ValueError:
            raise DataError(f"{info_path} names no split the rater study can read (settings.test_split="
                            f"{test_split!r}); set rater.image_root=PATH to the folder of the images") from None
        return {key: parsed[key] for key in SPLIT_KEYS}
    split = cfg.get("split", "iid")
    data_shift, ood_value = runs.shift_of(cfg, split)
    return {"dataset": str(cfg["dataset"]), "mod": cfg.get("mod", "test"), "split": split,
            "data_shift": data_shift, "ood_value": ood_value}


def image_resolver(cfg: Mapping[str, Any]) -> selection.ImageResolver:
    """rater.image_root if set (`<image_root>/<img_name>`); else each question's image as the dataset's split
    records give it (`sure_vqa.data.splits`, the way inference found it), for any dataset layout."""
    image_root = _rater(cfg).image_root
    if image_root:
        return selection.image_folder_resolver(image_root)
    from sure_vqa.data.splits import record_image_path, split_records

    dataset_root = runs.dataset_root(cfg)
    run = rated_split(cfg)
    split_name = naming.split_name(run["dataset"], run["mod"], run["split"], run["data_shift"], run["ood_value"])
    log.info("images of the rated run: split %s of %s", split_name, dataset_root / run["dataset"])
    hint = "; or set rater.image_root=PATH to the folder that holds the results' img_name files"
    try:
        records = split_records(dataset_root, run["dataset"], run["mod"], run["split"], run["data_shift"],
                                run["ood_value"])
    except DataError as err:
        raise DataError(f"{err}{hint}") from None
    except ConfigError as err:
        raise ConfigError(f"{err}{hint}") from None
    by_qid = {record.qid: record for record in records}

    def resolve(row: Mapping[str, Any]) -> Path:
        record = by_qid.get(str(row["qid"]))
        if record is None:
            raise DataError(f"qid {row['qid']} of the results is not in the split {split_name}{hint}")
        return record_image_path(dataset_root, run["dataset"], record)

    return resolve


def select(cfg: Mapping[str, Any]) -> Path:
    """human_rater_study/select_questions.py: chooses the questions and writes the study folder; returns it."""
    rater = _rater(cfg)
    settings = selection.SelectionSettings(
        answer_kind=rater.answer_kind,
        num_questions=rater.num_questions,
        seed=rater.selection_seed,
        stratify_by_judge=rater.stratify_by_judge,
        judge=_judge_name(cfg),
    ).check()
    eval_dir = runs.eval_dir(cfg)
    folder = selection.create_study(
        eval_dir, settings, image_resolver(cfg), study_dir=study_dir(cfg), study_id=rater.study_id
    )
    print(f"study: {folder / naming.RATER_STUDY_FILE}")
    return folder


def database(cfg: Mapping[str, Any], folder: Path) -> Path:
    db = _rater(cfg).db
    return Path(str(db)).expanduser() if db else folder / naming.RATER_DB_FILE


def serve(cfg: Mapping[str, Any]) -> None:
    """human_rater_study/serve.py: starts the rating app for the study (and rater.extra_study_dirs)."""
    from sure_vqa.rater.app import serve as serve_app
    from sure_vqa.rater.study import load_study

    rater = _rater(cfg)
    folder = study_dir(cfg)
    studies = [load_study(folder)] + [load_study(extra) for extra in rater.extra_study_dirs]
    serve_app(studies, database(cfg, folder), host=rater.host, port=rater.port)


def export(cfg: Mapping[str, Any]) -> list[Path]:
    """Writes human_metrics_<kind>_<rater>.json for every rater of the study into its eval folder."""
    from sure_vqa.rater.export import export_ratings
    from sure_vqa.rater.study import load_study

    folder = study_dir(cfg)
    study = load_study(folder)
    written = export_ratings(study, database(cfg, folder))
    for path in written:
        print(f"exported: {path}")
    return written


def analyze(cfg: Mapping[str, Any]) -> list[Path]:
    """human_rater_study/analyze.py: exports the ratings (when a database exists), then analyses the eval folder."""
    from sure_vqa.rater.analysis import run_analysis
    from sure_vqa.rater.study import load_study

    rater = _rater(cfg)
    folder = study_dir(cfg)
    study = load_study(folder)
    if database(cfg, folder).is_file():
        export(cfg)
    result, written = run_analysis(
        study.eval_dir,
        answer_kind=study.answer_kind,
        judge=_judge_name(cfg),
        raters=list(rater.raters) if rater.raters else None,
        out_dir=Path(rater.analysis_dir) if rater.analysis_dir else folder / naming.RATER_ANALYSIS_DIR,
        n_resamples=rater.n_resamples,
        confidence=rater.confidence,
        seed=rater.bootstrap_seed,
    )
    for path in written:
        print(f"wrote: {path}")
    return written
