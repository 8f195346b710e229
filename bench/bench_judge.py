"""Judge throughput: batched (left padding) against one row at a time, same model (SmolLM2-135M-Instruct), one run.

    python bench/bench_judge.py [--rows 16] [--batch-size 8] [--max-new-tokens 16] [--device auto]

Loads the offline judge once through the `hf` backend, sends the same open-question rubric prompts (distinct
rows) first in batches of --batch-size and then one at a time, and prints rows per second for each, the ratio,
and how many replies agree between the two (greedy decoding: they should all agree). The first pass is preceded
by one warm-up row. No cache is involved: this measures the judge itself.
"""

from __future__ import annotations

import argparse
import time

from sure_vqa.evaluate.judge.backends.hf import HFBackend
from sure_vqa.evaluate.judge.rubrics import OPEN, load_prompt
from sure_vqa.models.smollm2 import smollm2_dir

ORGANS = ["liver", "spleen", "left kidney", "right lung", "heart", "brain", "bladder", "pancreas"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    prompt = load_prompt(OPEN, "v1")
    conversations = [
        prompt.messages("Which organ is shown in this image?", ORGANS[i % len(ORGANS)],
                        f"the {ORGANS[(i * 3 + 1) % len(ORGANS)]}" + " and surrounding tissue" * (i % 3))
        for i in range(args.rows)
    ]
    start = time.perf_counter()
    backend = HFBackend(smollm2_dir(), batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                        device=args.device)
    print(f"model loaded in {time.perf_counter() - start:.1f} s on {backend.device}")
    backend.generate(conversations[:1])  # warm-up

    start = time.perf_counter()
    batched = backend.generate(conversations)
    batched_s = time.perf_counter() - start
    backend.batch_size = 1
    start = time.perf_counter()
    single = backend.generate(conversations)
    single_s = time.perf_counter() - start

    print(f"{'mode':24s} {'rows':>5s} {'seconds':>8s} {'rows/s':>8s}")
    print(f"{f'batched ({args.batch_size} per call)':24s} {args.rows:5d} {batched_s:8.2f} {args.rows / batched_s:8.2f}")
    print(f"{'one at a time':24s} {args.rows:5d} {single_s:8.2f} {args.rows / single_s:8.2f}")
    print(f"batched / one-at-a-time throughput ratio: {single_s / batched_s:.2f}x")
    print(f"replies identical in both modes: {sum(a == b for a, b in zip(batched, single, strict=True))}/{args.rows}")


if __name__ == "__main__":
    main()
