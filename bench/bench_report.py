"""How long the robustness report takes on a grid of the paper's size, phase by phase, side by side for
several bootstrap sizes.

    python bench/bench_report.py [--questions 1000] [--seeds 3] [--per-image 3]

Builds a synthetic experiment root in a temporary folder: the paper's 3 datasets and 7 shifts × 4 methods ×
seeds, each model with iid/ood × clean, no image and three corruption strengths; the zero-shot model and the most
frequent answer; traditional and judge metrics files with `--questions` open and as many closed questions per
run, `--per-image` questions about each image. Then it times scanning, reading the metrics files, the summary
tables (with their image-resampled intervals) for n_resamples 1000, 2000 and 9999, the paired comparisons and the
concordance at 2000, and the whole `build_report` (which must stay under a minute on two cores).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from sure_vqa import naming
from sure_vqa.images import corruptions as corruption_registry
from sure_vqa.study.report import ReportSettings, build_report
from sure_vqa.study.report.comparisons import comparison_table, concordance_table
from sure_vqa.study.report.grid import group
from sure_vqa.study.report.scan import scan
from sure_vqa.study.report.tables import ScoreReader, corruption_table, summary_table

SHIFTS = [("SLAKE", "modality", "X-Ray"), ("SLAKE", "content_type", "Size"), ("OVQA", "image_organ", "LEG"),
          ("OVQA", "question_type", "OrganSystem"), ("MIMIC", "ethnicity", "nonwhite"), ("MIMIC", "age", "young"),
          ("MIMIC", "gender", "F")]
METHODS = {"lora": ["rank16"], "ia3": [], "prompt": ["ntok80"], "full": []}  # folder-name tags
LR = {"lora": 3e-4, "ia3": 3e-2, "prompt": 3e-2, "full": 2e-5}


def write_run(folder: Path, rng: np.random.Generator, questions: int, per_image: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    open_ids = [f"o{i}" for i in range(questions)]
    closed_ids = [f"c{i}" for i in range(questions)]
    results = [{"qid": q, "question": "q?", "gt": "a", "pred": "a", "answer_type": t,
                "img_name": f"img{i // per_image}.png"}
               for ids, t in ((open_ids, "OPEN"), (closed_ids, "CLOSED")) for i, q in enumerate(ids)]
    f1 = rng.random(questions).round(3)
    accuracy = (rng.random(questions) < 0.7).astype(float)
    judge = rng.integers(1, 6, questions).astype(float)
    files = {
        naming.TEST_RESULTS_FILE: results,
        naming.OPEN_METRICS_FILE: [{"avg_f1_score": f1.mean(), "avg_exact_match_score": f1.mean()}]
        + [{"qid": q, "f1_score": v, "exact_match_score": v} for q, v in zip(open_ids, f1, strict=True)],
        naming.CLOSED_METRICS_FILE: [{"avg_accuracy": accuracy.mean()}]
        + [{"qid": q, "accuracy": v} for q, v in zip(closed_ids, accuracy, strict=True)],
        naming.judge_metrics_files("gemma")[0]: [{"avg_score": judge.mean(), "n_failures": 0, "judge": "gemma"}]
        + [{"qid": q, "score": v} for q, v in zip(open_ids, judge, strict=True)],
        naming.judge_metrics_files("gemma")[1]: [{"avg_score": accuracy.mean(), "n_failures": 0, "judge": "gemma"}]
        + [{"qid": q, "score": v} for q, v in zip(closed_ids, accuracy, strict=True)],
    }
    for name, payload in files.items():
        (folder / name).write_text(json.dumps(payload))


def build_root(root: Path, questions: int, seeds: int, per_image: int) -> int:
    rng = np.random.default_rng(0)
    corruptions = [corruption_registry.uniform_settings(s, 0.5) for s in naming.STRENGTHS]
    count = 0
    for dataset, field, value in SHIFTS:
        train_split = naming.split_name(dataset, "train", "iid", field, value)
        model_dirs = [naming.experiment_dir(root, naming.experiment_name(
            train_split, naming.finetune_tag(method, LR[method], 123 + s, tags)))
            for method, tags in METHODS.items() for s in range(seeds)]
        for model_dir in model_dirs:
            for split in ("iid", "ood"):
                test_split = naming.split_name(dataset, "test", split, field, value)
                names = [naming.eval_run_name(test_split), naming.eval_run_name(test_split, no_image=True)]
                names += [naming.eval_run_name(test_split, corruption=c) for c in corruptions]
                for name in names:
                    write_run(naming.eval_dir(model_dir, name), rng, questions, per_image)
                    count += 1
        for model_dir in (naming.pretrained_dir(root, dataset), naming.most_frequent_dir(root, train_split)):
            for split in ("iid", "ood"):
                write_run(naming.eval_dir(model_dir, naming.split_name(dataset, "test", split, field, value)), rng,
                          questions, per_image)
                count += 1
    return count


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=1000, help="open (and as many closed) questions per run")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--per-image", type=int, default=3, help="questions about each image")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        runs, seconds = timed(build_root, root, args.questions, args.seeds, args.per_image)
        print(f"experiment root: {len(SHIFTS)} shifts x {len(METHODS)} methods x {args.seeds} seeds + baselines = "
              f"{runs} runs, {args.questions} open + {args.questions} closed questions each on "
              f"{-(-args.questions // args.per_image)} images (written in {seconds:.1f} s)")
        found, scan_s = timed(scan, root)
        shifts = group(found)
        reader = ScoreReader()
        _, read_s = timed(lambda: [reader(run) for run in found.runs])
        print(f"\n{'phase':<42}{'seconds':>10}")
        print(f"{'scan folders':<42}{scan_s:>10.2f}")
        print(f"{'read metrics files':<42}{read_s:>10.2f}")
        for n_resamples in (1000, 2000, 9999):
            table, table_s = timed(summary_table, shifts, reader, ReportSettings(n_resamples=n_resamples))
            print(f"{f'summary table, n_resamples={n_resamples}':<42}{table_s:>10.2f}   ({len(table)} rows)")
        _, corruption_s = timed(corruption_table, shifts, reader)
        print(f"{'corruption table':<42}{corruption_s:>10.2f}")
        settings = ReportSettings(n_resamples=2000)
        pairs, pairs_s = timed(comparison_table, shifts, reader, settings)
        print(f"{'paired comparisons, n_resamples=2000':<42}{pairs_s:>10.2f}   ({len(pairs)} comparisons)")
        concordance, concordance_s = timed(concordance_table, table, settings)
        print(f"{'concordance (Kendall W)':<42}{concordance_s:>10.2f}   ({len(concordance)} rows)")
        files, total_s = timed(build_report, root, root / "out", ReportSettings(n_resamples=2000), progress=False)
        print(f"{'build_report end to end (n_resamples=2000)':<42}{total_s:>10.2f}   "
              f"(HTML {files.html.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
