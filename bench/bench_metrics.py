"""Traditional-metrics throughput, ours against a straightforward per-row implementation, side by side.

    python bench/bench_metrics.py [--rows 20000] [--seed 0] [--repeats 5]

Two deterministic synthetic tables of mixed rows (half open questions, half closed yes/no and "A or B"):

- "VQA-like": answers as a VQA dataset has them: ground truths drawn (Zipf-like) from a vocabulary of 300
  answers of 1-4 words, predictions the ground truth, another vocabulary answer or (one in five) a free phrase
  of 1-8 words;
- "all distinct": every open answer a random phrase of 1-8 words (few repeats: the worst case for ours).

For the open questions, the baseline is written here: per row, the normalisation rules of docs/method.md with
a Python decision per punctuation mark, exact match, token P/R/F1 with Counters, and nltk's `sentence_bleu`
once per BLEU order. Ours is `score_open_rows` (regex normalisation once per distinct text, own BLEU, each
distinct (gt, pred) pair scored once). The largest difference between the two over every value is printed:
it must be 0 to 1e-12. Closed accuracy, the whole traditional pass and ROUGE-L are timed for ours alone.
Every timing is the best of --repeats runs (each run starts from nothing: `score_open_rows` keeps no state).
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import re
import time
import warnings
from collections import Counter
from collections.abc import Callable

from nltk.translate.bleu_score import sentence_bleu

from sure_vqa.evaluate.metrics.normalize import ARTICLES, CONTRACTIONS, NUMBER_WORDS, PUNCTUATION
from sure_vqa.evaluate.metrics.open.rouge_l import rouge_l
from sure_vqa.evaluate.metrics.traditional import score_closed_rows, score_open_rows

WORDS = ("left right upper lower lobe lung liver spleen kidney heart brain the a of and with mass nodule effusion "
         "opacity fracture two three none CT MRI X-Ray, axial coronal sagittal plane small large irregular oval "
         "abdomen chest pelvis. bladder (normal) abnormal").split()
KEYS = ("exact_match_score", "f1_score", "precision", "recall", "bleu_score_1", "bleu_score_2", "bleu_score_3")


def synthetic_rows(n: int, seed: int, vqa_like: bool = True) -> tuple[list[dict], list[dict], list[list[str]]]:
    rng = random.Random(seed)

    def phrase(low: int = 1, high: int = 8) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))

    vocabulary = [phrase(1, 4) for _ in range(300)]
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]

    def open_answers() -> tuple[str, str]:
        if not vqa_like:
            return phrase(), phrase()
        gt = rng.choices(vocabulary, weights)[0]
        pred = rng.choice([gt, gt, rng.choices(vocabulary, weights)[0], rng.choices(vocabulary, weights)[0],
                           phrase()])
        return gt, pred

    open_rows, closed_rows, categories = [], [], []
    for i in range(n):
        if i % 2 == 0:
            gt, pred = open_answers()
            open_rows.append({"qid": str(i), "question": "What is shown?", "gt": gt, "pred": pred,
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


# --- the baseline: the same definitions, written the straightforward way, one row at a time --------------

_MARK = re.compile("[" + re.escape("".join(sorted(PUNCTUATION))) + ".]")


def baseline_tokens(text: str) -> list[str]:
    text = text.lower()

    def replace(match: re.Match[str]) -> str:
        at, mark = match.start(), match.group()
        before = text[at - 1] if at > 0 else ""
        after = text[at + 1] if at + 1 < len(text) else ""
        between_digits = bool(re.fullmatch(r"\d", before)) and bool(re.fullmatch(r"\d", after))
        if mark == ".":
            return "." if between_digits else ""
        if before.isspace() or after.isspace() or (mark == "," and between_digits):
            return ""
        return " "

    tokens = []
    for word in _MARK.sub(replace, text).split():
        word = NUMBER_WORDS.get(word, word)
        if word in ARTICLES:
            continue
        word = CONTRACTIONS.get(word, word).replace(",", "")
        if word:
            tokens.append(word)
    return tokens


def baseline_row(gt: str, pred: str) -> dict[str, float]:
    gt_tokens, pred_tokens = baseline_tokens(gt), baseline_tokens(pred)
    exact = len(set(gt_tokens) & set(pred_tokens)) / len(pred_tokens) if pred_tokens else 0.0
    pred_counts, gt_counts = Counter(pred_tokens), Counter(gt_tokens)
    tp = sum(c for w, c in pred_counts.items() if w in gt_counts)
    if tp == 0 or not pred_tokens or not gt_tokens:
        precision = recall = f1 = 0.0
    else:
        precision = tp / (tp + sum(c for w, c in pred_counts.items() if w not in gt_counts))
        recall = tp / (tp + sum(c for w, c in gt_counts.items() if w not in pred_counts))
        f1 = 2 * precision * recall / (precision + recall)
    bleu = [float(sentence_bleu([gt_tokens], pred_tokens, weights=w))
            for w in ((1.0,), (1 / 2, 1 / 2), (1 / 3, 1 / 3, 1 / 3))]
    return dict(zip(KEYS, (exact, f1, precision, recall, *bleu), strict=True))


def timed(fn: Callable[[], object], repeats: int = 1) -> tuple[object, float]:
    """The value and the best time of `repeats` calls, with the garbage collector off while timing (as timeit:
    otherwise a collection that walks every object alive, the other variant's results included, lands in one
    variant's time or the other's)."""
    best = math.inf
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            value = fn()
            best = min(best, time.perf_counter() - start)
        finally:
            gc.enable()
    return value, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5, help="each timing is the best of this many runs")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # nltk's "n-gram overlaps" warning, once per short answer

    print(f"open metrics (EM, P/R/F1, BLEU-1..3), {args.rows} mixed rows per table")
    print(f"{'table':14s} {'open rows':>9s} {'distinct pairs':>14s} {'baseline rows/s':>16s} {'ours rows/s':>12s} "
          f"{'speed-up':>9s} {'max |diff|':>11s}")
    for label, vqa_like in (("VQA-like", True), ("all distinct", False)):
        open_rows, _, _ = synthetic_rows(args.rows, args.seed, vqa_like)
        baseline, baseline_s = timed(lambda rows=open_rows: [baseline_row(r["gt"], r["pred"]) for r in rows],
                                     args.repeats)
        ours, ours_s = timed(lambda rows=open_rows: score_open_rows(rows, progress=False), args.repeats)
        diff = max(abs(b[k] - o[k]) for b, o in zip(baseline, ours[1:], strict=True) for k in KEYS)  # type: ignore[index,arg-type]
        pairs = len({(r["gt"], r["pred"]) for r in open_rows})
        n = len(open_rows)
        print(f"{label:14s} {n:9d} {pairs:14d} {n / baseline_s:16.0f} {n / ours_s:12.0f} "
              f"{baseline_s / ours_s:8.1f}x {diff:11.1e}")

    open_rows, closed_rows, categories = synthetic_rows(args.rows, args.seed)
    subset = open_rows[:10_000]
    print(f"\n{'ours, VQA-like table':40s} {'rows':>8s} {'seconds':>9s} {'rows/s':>10s}")
    for label, n, fn in (
        ("closed accuracy", len(closed_rows), lambda: score_closed_rows(closed_rows, categories, progress=False)),
        ("all traditional metrics", args.rows, lambda: (score_open_rows(open_rows, progress=False),
                                                        score_closed_rows(closed_rows, categories, progress=False))),
        ("extra: ROUGE-L", len(subset), lambda: [rouge_l(r["gt"], r["pred"]) for r in subset]),
    ):
        _, seconds = timed(fn, args.repeats)
        print(f"{label:40s} {n:8d} {seconds:9.2f} {n / seconds:10.0f}")


if __name__ == "__main__":
    main()
