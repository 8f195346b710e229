"""The rater study's `rater:` settings (docs/rater_study.md), the only home of their defaults; the study's config
(config/rater/rater_study_defaults.yaml) takes them from the ConfigStore (/settings/rater)."""

from __future__ import annotations

from dataclasses import dataclass

from sure_vqa import naming
from sure_vqa.settings import setting


@dataclass(frozen=True)
class RaterSettings:
    """One block for the three commands: select (which questions), serve (the rating app), analyze."""

    answer_kind: str = setting("open", choices=naming.ANSWER_KINDS)  # open (1-5 stars) | closed (0/1, 0/0.5/1)
    study_dir: str | None = None  # null: <eval_dir>/rater_study_<answer_kind>
    # select
    num_questions: int = setting(50, minimum=1)  # questions whose prediction differs from the ground truth
    selection_seed: int = 0
    stratify_by_judge: bool = False  # spread the sample evenly over the judge's scores (<judge.name>_metrics.json)
    study_id: str | None = None  # null: <answer_kind>-<hash of the settings>; shown to raters, so name no model
    image_root: str | None = None  # null: the images of the run's split file under paths.dataset_root
    # serve
    extra_study_dirs: tuple[str, ...] = ()  # further study folders served by the same app (and database)
    db: str | None = None  # null: <study_dir>/ratings.sqlite
    host: str = "127.0.0.1"  # 0.0.0.0 to let raters on the local network connect (plain http)
    port: int = setting(8000, minimum=1, below=65536, must_be="an integer between 1 and 65535")
    # analyze
    raters: tuple[str, ...] | None = None  # null: every human_metrics_<answer_kind>_<rater>.json in the eval folder
    n_resamples: int = setting(1000, minimum=1)  # bootstrap resamples of the questions
    confidence: float = setting(0.95, above=0, below=1, must_be="a number between 0 and 1 (e.g. 0.95)")
    bootstrap_seed: int = 0
    analysis_dir: str | None = None  # null: <study_dir>/analysis
