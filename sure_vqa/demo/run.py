"""`make demo`: the whole SURE-VQA study on the bundled demo, offline, on a CPU, in minutes.

    sure-vqa demo [out=DIR] [demo_size=quick] [study overrides ...]

It builds the demo dataset (real medical images that ship inside Python packages) and the demo VLM (the real
SmolLM2-135M-Instruct with a small CLIP tower aligned on captions of the demo's train images, built once and
cached), then runs the study of docs/study.md through the same code as a real one: LoRA, IA3 and prompt tuning
trained on the modality shift's iid split, a LoRA model trained without images, the most-frequent-answer
baseline; inference on iid, ood, without images, with a blank and a shuffled image and with one corruption
level, and the same three methods on a second shift (the iid/ood swap, clean runs only) so that the report can
compare the shifts' rankings; traditional metrics and the SmolLM2 judge in score mode; the report. Everything
lands under `out` (default ./demo_run); a rerun skips what is done. The sizes are cut (config/study/demo.yaml)
so that it fits in 15 minutes on two cores (README: "The demo").
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, open_dict

# The demo's cuts are a study config of their own (config/study/demo.yaml); demo_size=quick cuts further.
DEMO_CONFIG = "study/demo"
# The paths of config/study/demo.yaml that lie under `out` (made absolute before the study runs).
OUT_PATHS = ("dataset_root", "experiment_root", "model_path")


def dataset_root(out_dir: Path) -> Path:
    return out_dir / "datasets"


def model_dir(out_dir: Path) -> Path:
    return out_dir / "models" / "demo-llava"


def prepare(out_dir: Path) -> tuple[Path, Path]:
    """Builds (or reuses) the demo dataset and the demo model; returns (dataset root, model folder)."""
    from sure_vqa.demo.alignment import aligned_demo_model, link_model
    from sure_vqa.demo.dataset import build_demo

    print("[demo] dataset: building from images shipped in pydicom, pydicom-data, nibabel, scikit-image", flush=True)
    build_demo(dataset_root(out_dir) / "demo")
    print("[demo] model: SmolLM2-135M-Instruct + a CLIP vision tower aligned on captions of the train images "
          "(built once, then cached)", flush=True)
    return dataset_root(out_dir), link_model(aligned_demo_model(), model_dir(out_dir))


def demo_config(out_dir: Path, overrides: Sequence[str] = ()) -> DictConfig:
    """The demo's study config for `out_dir`, with the user's overrides (the doctor checks it)."""
    from sure_vqa.config import compose

    return absolute_paths(compose(DEMO_CONFIG, [f"out={out_dir}", *overrides], what="demo setting"))


def absolute_paths(cfg: DictConfig) -> DictConfig:
    """`out` and the paths under it made absolute (the study's folder names and the report record them)."""
    with open_dict(cfg):
        cfg.out = str(Path(cfg.out).expanduser().resolve())
        for key in OUT_PATHS:
            cfg.paths[key] = str(Path(cfg.paths[key]).expanduser().resolve())
    return cfg


def demo_command(cfg: DictConfig) -> None:
    """`sure-vqa demo`: builds the dataset and the model (once), runs the study, prints where the report is."""
    from sure_vqa import naming
    from sure_vqa.study import run as study

    cfg = absolute_paths(cfg)
    if Path(cfg.paths.dataset_root) != dataset_root(Path(cfg.out)) or Path(cfg.paths.model_path) != model_dir(
            Path(cfg.out)):
        from sure_vqa.config import ConfigError

        raise ConfigError("the demo builds its dataset and model under `out`; set out=DIR instead of "
                          "paths.dataset_root or paths.model_path")
    prepare(Path(cfg.out))
    study.run_study(cfg)  # ends with the report
    from sure_vqa.study.report.render import REPORT_HTML

    html = naming.report_dir(Path(cfg.paths.experiment_root)) / REPORT_HTML
    print(f"\n[demo] done. Report: {html}\n[demo] Tables: {html.parent}", flush=True)
