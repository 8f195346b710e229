"""Traditional-metrics throughput on 100,000 rows, side by side.

    python bench/bench_metrics.py [--rows 100000] [--seed 0]

Builds a deterministic synthetic test_results.json-like table (half open questions with 1-8 word answers, half
closed yes/no and "A or B" questions) from a medical vocabulary, then prints rows per second for: normalisation
alone, open metrics (exact match, P/R/F1, BLEU-1..3 via nltk), closed accuracy, and the whole traditional pass
(both files' contents, as run_eval builds them). ROUGE-L, an optional extra, is timed on a 10,000-row subset.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

from sure_vqa.evaluate.metrics.normalize import normalize_tokens
from sure_vqa.evaluate.metrics.open.rouge_l import rouge_l
from sure_vqa.evaluate.metrics.traditional import score_closed_rows, score_open_rows

WORDS = ("left right upper lower lobe lung liver spleen kidney heart brain the a of and with mass nodule effusion "
         "opacity fracture two three none CT MRI X-Ray, axial coronal sagittal plane small large irregular oval "
         "abdomen chest pelvis. bladder (normal) abnormal").split()


def synthetic_rows(n: int, seed: int) -> tuple[list[dict], list[dict], list[list[str]]]:
    rng = random.Random(seed)

    def phrase() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 8)))

    open_rows, closed_rows, categories = [], [], []
    for i in range(n):
        if i % 2 == 0:
            open_rows.append({"qid": str(i), "question": "What is shown?", "gt": phrase(), "pred": phrase(),
                              "answer_type": "OPEN"})
        else:
            options = ["yes", "no"] if i % 4 == 1 else rng.sample(["CT", "MRI", "left", "right"], 2)
            gt = rng.choice(options)
            pred = rng.choice([gt, options[0] if gt == options[1] else options[1], f"{gt}, I think",
                               " or ".join(options), "unsure"])
            closed_rows.append({"qid": str(i), "question": "Closed?", "gt": gt, "pred": pred,
                                "answer_type": "CLOSED"})
            categories.append(options)
    return open_rows, closed_rows, categories


def rows_per_second(label: str, n: int, fn: Callable[[], object]) -> tuple[str, int, float, float]:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    return label, n, seconds, n / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    open_rows, closed_rows, categories = synthetic_rows(args.rows, args.seed)
    subset = open_rows[:10_000]
    results = [
        rows_per_second("normalisation (gt + pred)", len(open_rows),
                        lambda: [(normalize_tokens(r["gt"]), normalize_tokens(r["pred"])) for r in open_rows]),
        rows_per_second("open metrics (EM, P/R/F1, BLEU-1..3)", len(open_rows),
                        lambda: score_open_rows(open_rows, progress=False)),
        rows_per_second("closed accuracy", len(closed_rows),
                        lambda: score_closed_rows(closed_rows, categories, progress=False)),
        rows_per_second("all traditional metrics", args.rows,
                        lambda: (score_open_rows(open_rows, progress=False),
                                 score_closed_rows(closed_rows, categories, progress=False))),
        rows_per_second("extra: ROUGE-L", len(subset), lambda: [rouge_l(r["gt"], r["pred"]) for r in subset]),
    ]
    print(f"{'what':40s} {'rows':>8s} {'seconds':>9s} {'rows/s':>10s}")
    for label, n, seconds, rate in results:
        print(f"{label:40s} {n:8d} {seconds:9.2f} {rate:10.0f}")


if __name__ == "__main__":
    main()
