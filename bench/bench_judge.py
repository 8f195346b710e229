"""Judge throughput, one run, same rows: generate one at a time, generate batched, and score mode.

    python bench/bench_judge.py [--rows 32] [--batch-size 8] [--max-new-tokens 16] [--device auto] [--dtype auto]
                                [--model DIR]

Loads the judge once through the `hf` backend (default: the offline SmolLM2-135M-Instruct; --model takes any
chat model folder, e.g. gemma-2-9b-it on a GPU), builds distinct open-question rubric prompts, and times:
generation with batch size 1, generation with --batch-size (left padding), and score mode (the rubric's
prefix encoded once, one forward pass per batch of rows, then the scale's continuations). It prints rows per
second, the ratios, how many generate replies parse to a score, and the agreement of score mode's argmax with
them (share equal and quadratic-weighted Cohen's kappa). Each mode starts with one warm-up row. No cache.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sure_vqa.evaluate.judge.agreement import agreement
from sure_vqa.evaluate.judge.backends.hf import HFBackend
from sure_vqa.evaluate.judge.distribution import distribution
from sure_vqa.evaluate.judge.parser import parse_score
from sure_vqa.evaluate.judge.rubrics import OPEN, REPLY_PREFIX, RUBRICS, load_prompt

ORGANS = ["liver", "spleen", "left kidney", "right lung", "heart", "brain", "bladder", "pancreas"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--model", type=Path, default=None, help="a chat model folder (default: offline SmolLM2)")
    args = parser.parse_args()

    prompt, rubric = load_prompt(OPEN, "v1"), RUBRICS[OPEN]
    conversations = [
        prompt.messages("Which organ is shown in this image?", ORGANS[i % len(ORGANS)],
                        f"the {ORGANS[(i * 3 + 1) % len(ORGANS)]}" + " and surrounding tissue" * (i % 3)
                        + f" ({i})" * (i >= len(ORGANS)))
        for i in range(args.rows)
    ]
    if args.model is None:
        from sure_vqa.models.smollm2 import smollm2_dir

        args.model = smollm2_dir()
    start = time.perf_counter()
    backend = HFBackend(args.model, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                        device=args.device, dtype=args.dtype)
    print(f"{args.model.name} loaded in {time.perf_counter() - start:.1f} s on {backend.device} "
          f"({backend.model.dtype}); {args.rows} distinct open-question rows, max_new_tokens={args.max_new_tokens}")

    def timed(label: str, batch_size: int, fn):  # type: ignore[no-untyped-def]
        backend.batch_size = batch_size
        fn(conversations[:1])  # warm-up
        start = time.perf_counter()
        value = fn(conversations)
        return label, time.perf_counter() - start, value

    def score(rows):  # type: ignore[no-untyped-def]
        return backend.score(rows, REPLY_PREFIX, rubric.continuations, shared_text=prompt.text)

    runs = [timed("generate, one at a time", 1, backend.generate),
            timed(f"generate, batched ({args.batch_size})", args.batch_size, backend.generate),
            timed(f"score mode ({args.batch_size} per pass)", args.batch_size, score)]
    batched_s = runs[1][1]
    print(f"{'mode':30s} {'seconds':>8s} {'rows/s':>8s} {'vs batched generate':>20s}")
    for label, seconds, _ in runs:
        print(f"{label:30s} {seconds:8.2f} {args.rows / seconds:8.2f} {batched_s / seconds:19.2f}x")

    generated = [parse_score(reply, rubric.scale).score for reply in runs[1][2]]
    single = runs[0][2]
    scored = [distribution(rubric.scale, logprobs).score for logprobs in runs[2][2]]
    same = agreement(scored, generated, rubric.scale)
    print(f"generate replies identical batched and one at a time: "
          f"{sum(a == b for a, b in zip(runs[1][2], single, strict=True))}/{args.rows}")
    print(f"generate replies that parse to a score: {sum(g is not None for g in generated)}/{args.rows}; "
          f"score mode gives a score for {len(scored)}/{args.rows}")
    kappa = "undefined" if same["kappa_quadratic"] is None else f"{same['kappa_quadratic']:.3f}"
    share = "n/a" if same["share_equal"] is None else f"{same['share_equal']:.2f}"
    print(f"agreement on the {same['n_compared']} rows both scored: share equal {share}, quadratic kappa {kappa}")


if __name__ == "__main__":
    main()
