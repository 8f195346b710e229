"""`make demo`: the whole SURE-VQA study on the bundled demo, offline, on a CPU, in minutes.

    python -m sure_vqa.demo [--out DIR] [--quick] [study overrides ...]

It builds the demo dataset (real medical images that ship inside Python packages) and the demo VLM (the real
SmolLM2-135M-Instruct with a small CLIP tower aligned on captions of the demo's train images, built once and
cached), then runs the study of docs/study.md through the same code as a real one: LoRA, IA3 and prompt tuning
trained on the modality shift's iid split, a LoRA model trained without images, the most-frequent-answer
baseline; inference on iid, ood, without images, with a blank and a shuffled image and with one corruption
level; traditional metrics and the SmolLM2 judge in score mode; the report. Everything lands under --out
(default ./demo_run); a rerun skips what is done. The sizes are cut (config/study/demo.yaml) so that it fits in
15 minutes on two cores (README: "The demo"; about 10 minutes from a fresh clone).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_OUT = Path("demo_run")

# The demo's cuts are a study config of their own (config/study/demo.yaml); --quick cuts further.
DEMO_CONFIG = "study/demo"
QUICK_CONFIG = "study/demo_quick"


def dataset_root(out_dir: Path) -> Path:
    return out_dir / "datasets"


def model_dir(out_dir: Path) -> Path:
    return out_dir / "models" / "demo-llava"


def demo_paths(out_dir: Path) -> tuple[str, ...]:
    """The paths overrides of the demo study in `out_dir` (also checked by `python -m sure_vqa.doctor --demo`)."""
    return (
        f"paths.dataset_root={dataset_root(out_dir)}",
        f"paths.experiment_root={out_dir / 'experiments'}",
        f"paths.model_path={model_dir(out_dir)}",
    )


def prepare(out_dir: Path) -> tuple[Path, Path]:
    """Builds (or reuses) the demo dataset and the demo model; returns (dataset root, model folder)."""
    from sure_vqa.data.demo import build_demo
    from sure_vqa.models.demo_alignment import aligned_demo_model, link_model

    print("[demo] dataset: building from images shipped in pydicom, pydicom-data, nibabel, scikit-image", flush=True)
    build_demo(dataset_root(out_dir) / "demo")
    print("[demo] model: SmolLM2-135M-Instruct + a CLIP vision tower aligned on captions of the train images "
          "(built once, then cached)", flush=True)
    return dataset_root(out_dir), link_model(aligned_demo_model(), model_dir(out_dir))


def demo_config(out_dir: Path, quick: bool = False, overrides: Sequence[str] = ()) -> Any:
    """The demo's study config for `out_dir`, with the user's overrides (they win)."""
    from sure_vqa.config import compose

    return compose(QUICK_CONFIG if quick else DEMO_CONFIG, [*demo_paths(out_dir.resolve()), *overrides],
                   what="demo setting")


def run_demo(out_dir: Path = DEFAULT_OUT, quick: bool = False, overrides: Sequence[str] = ()) -> Path:
    """Runs the demo study; returns the report's HTML page."""
    from sure_vqa import naming
    from sure_vqa.study import run as study

    out_dir = out_dir.resolve()
    prepare(out_dir)
    cfg = demo_config(out_dir, quick, overrides)
    study.run_study(cfg)  # ends with the report
    return naming.report_dir(out_dir / "experiments") / naming.REPORT_HTML


def main(argv: Sequence[str] | None = None) -> None:
    from sure_vqa.config import ConfigError, load_env

    parser = argparse.ArgumentParser(prog="python -m sure_vqa.demo",
                                     description="Runs the SURE-VQA study on the bundled demo, offline.")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("SURE_VQA_DEMO_DIR", DEFAULT_OUT)),
                        help="folder for the dataset, model, experiments and report (default ./demo_run)")
    parser.add_argument("--quick", action="store_true", help="a smaller run (a smoke test of the pipeline)")
    parser.add_argument("overrides", nargs="*", help="study overrides, e.g. grid.methods=[lora]")
    args = parser.parse_args(argv)
    load_env()
    try:
        html = run_demo(args.out, args.quick, args.overrides)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print(f"\n[demo] done. Report: {html}\n[demo] Tables: {html.parent}", flush=True)


if __name__ == "__main__":
    main()
